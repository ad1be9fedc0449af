"""The audit log: one call, ``record_event``, used by every app for security-relevant actions.

Call it inside the transaction of the change it records, so the event and the
change commit (or roll back) together.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.db import models
from django.http import HttpRequest
from rest_framework.request import Request

from accounts.models import AuditEvent, Team

# Action names used by accounts; other apps use "<object>.<verb>" the same way.
LOGIN_SUCCESS = "login.success"
LOGIN_FAILURE = "login.failure"
LOGOUT = "logout"
PASSWORD_CHANGE = "password.change"  # noqa: S105 (an action name)
SIGNUP = "user.signup"
USER_DELETE = "user.delete"
TOKEN_CREATE = "token.create"  # noqa: S105 (an action name)
TOKEN_REVOKE = "token.revoke"  # noqa: S105 (an action name)
TOKEN_UPDATE = "token.update"  # noqa: S105 (an action name)
TOKEN_DELETE = "token.delete"  # noqa: S105 (an action name)
TEAM_CREATE = "team.create"
TEAM_UPDATE = "team.update"
TEAM_DELETE = "team.delete"
MEMBERSHIP_ADD = "membership.add"
MEMBERSHIP_ROLE_CHANGE = "membership.role_change"
MEMBERSHIP_REMOVE = "membership.remove"

USER_AGENT_MAX = 512


def client_ip(request: HttpRequest | Any) -> str | None:
    """The caller's IP: REMOTE_ADDR, or the first X-Forwarded-For hop when the proxy is trusted."""
    meta = getattr(request, "META", None) or {}
    raw = meta.get("REMOTE_ADDR", "")
    if getattr(settings, "USE_X_FORWARDED_FOR", False) and meta.get("HTTP_X_FORWARDED_FOR"):
        raw = meta["HTTP_X_FORWARDED_FOR"].split(",")[0].strip()
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return None


def _authenticated_user(request: Any) -> Any:
    """The request's user without triggering authentication (audit runs inside DRF's authenticators)."""
    if isinstance(request, Request):
        return request.__dict__.get("_user")
    return getattr(request, "user", None)


def _team_of(target: Any) -> Any:
    if isinstance(target, Team):
        return target.pk
    return getattr(target, "team_id", None)


def record_event(
    *,
    action: str,
    actor: Any = None,
    request: HttpRequest | Any = None,
    target: models.Model | None = None,
    team: Team | int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Write one audit event; ip and user agent come from ``request``, the team from ``target``."""
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    if actor is None and request is not None:
        user = _authenticated_user(request)
        if user is not None and user.is_authenticated:
            actor = user
    team_id = team.pk if isinstance(team, Team) else team
    if team_id is None and target is not None:
        team_id = _team_of(target)
    meta = getattr(request, "META", None) or {}
    event = AuditEvent(
        action=action,
        actor=actor,
        actor_username=actor.get_username() if actor is not None else "",
        object_type=f"{target._meta.app_label}.{target._meta.model_name}" if target is not None else "",
        object_id=str(target.pk) if target is not None and target.pk is not None else "",
        object_repr=str(target)[:200] if target is not None else "",
        team_id=team_id,
        ip=client_ip(request) if request is not None else None,
        user_agent=str(meta.get("HTTP_USER_AGENT", ""))[:USER_AGENT_MAX],
        details=details or {},
    )
    event.save()
    return event
