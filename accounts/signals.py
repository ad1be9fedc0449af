"""Count and audit logins wherever they happen (login form, admin, Basic, JWT obtain)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from accounts import audit, throttling


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
