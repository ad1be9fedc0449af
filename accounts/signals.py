"""Count and audit logins wherever they happen (login form, admin, Basic, JWT obtain)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from accounts import audit, throttling
from accounts.authentication import forget_cached_tokens
from accounts.models import ApiToken, Membership
from accounts.permissions import forget_cached_roles


@receiver(user_login_failed, dispatch_uid="accounts.login_failed")
def on_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    """Count the failure for throttling and write a login.failure audit event."""
    username = credentials.get(get_user_model().USERNAME_FIELD) or credentials.get("username")
    username = str(username)[:150] if username is not None else None
    ip = audit.client_ip(request) if request is not None else None
    throttling.record_failure(username=username, ip=ip)
    target = get_user_model().objects.filter(username=username).first() if username else None
    audit.record_event(
        action=audit.LOGIN_FAILURE,
        request=request,
        target=target,
        details={"username": username or "", "method": credentials.get("method", "password")},
    )


@receiver(user_logged_in, dispatch_uid="accounts.logged_in")
def on_logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """Reset the username's failure counter and write a login.success audit event (session logins)."""
    throttling.reset(username=user.get_username())
    audit.record_event(action=audit.LOGIN_SUCCESS, actor=user, request=request, details={"method": "session"})


@receiver(user_logged_out, dispatch_uid="accounts.logged_out")
def on_logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """Write a logout audit event for session logouts."""
    if user is not None:
        audit.record_event(action=audit.LOGOUT, actor=user, request=request, details={"method": "session"})


@receiver(post_save, sender=ApiToken, dispatch_uid="accounts.token_saved")
@receiver(post_delete, sender=ApiToken, dispatch_uid="accounts.token_deleted")
def on_token_changed(sender: Any, instance: ApiToken, **kwargs: Any) -> None:
    """A revoked, edited or deleted token stops authenticating from the cache at once."""
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and set(update_fields) == {"last_used_at"}:
        return
    forget_cached_tokens([instance.prefix])
    # Again after commit: a request that read the old row before the commit may have cached it since.
    transaction.on_commit(lambda: forget_cached_tokens([instance.prefix]))


@receiver(post_save, dispatch_uid="accounts.user_saved")
@receiver(post_delete, dispatch_uid="accounts.user_deleted")
def on_user_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A deactivated, demoted or deleted user's tokens stop authenticating from the cache at once."""
    if sender is not get_user_model() or kwargs.get("update_fields") == frozenset({"last_login"}):
        return
    forget_cached_roles(instance.pk)  # also covers a new user reusing the id of a deleted one
    prefixes = list(ApiToken.objects.filter(user_id=instance.pk).values_list("prefix", flat=True))
    if prefixes:
        forget_cached_tokens(prefixes)
        transaction.on_commit(lambda: forget_cached_tokens(prefixes))


@receiver(post_save, sender=Membership, dispatch_uid="accounts.membership_saved")
@receiver(post_delete, sender=Membership, dispatch_uid="accounts.membership_deleted")
def on_membership_changed(sender: Any, instance: Membership, **kwargs: Any) -> None:
    """A granted, changed or removed role applies to the member's next request."""
    forget_cached_roles(instance.user_id)
    transaction.on_commit(lambda: forget_cached_roles(instance.user_id))
