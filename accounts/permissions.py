"""The one place that decides who may do what.

Rules: an object belongs to a team (``obj.team_id``, or the Team itself). A user
who is not a member of that team gets 404, so existence is not revealed; a
member whose role is too low gets 403. Staff may read everything; superusers
may do everything. Views, the MLflow façade, consumers and pages all call
``authorize`` (or the DRF classes built on it), never their own checks.
"""

from __future__ import annotations

import contextlib
import logging
from enum import StrEnum
from typing import Any, Protocol

from django.contrib.auth.models import AnonymousUser
from rest_framework import permissions

from accounts.models import Membership, Role, Team
from mlplatform.errors import Forbidden, NotFound
from mlplatform.near_cache import AUTH_ENTRIES

logger = logging.getLogger("mlplatform.auth")


class Action(StrEnum):
    """What a caller wants to do with an object."""

    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    DEPLOY = "deploy"
    MANAGE = "manage"
    OWN = "own"


REQUIRED_ROLE: dict[Action, Role] = {
    Action.READ: Role.VIEWER,
    Action.WRITE: Role.EDITOR,
    Action.DELETE: Role.ADMIN,
    Action.DEPLOY: Role.ADMIN,
    Action.MANAGE: Role.ADMIN,
    Action.OWN: Role.OWNER,
}


class TeamOwned(Protocol):
    """Anything with a ``team_id``: experiments, runs, models, deployments..."""

    team_id: int


def team_id_of(obj: Any) -> int:
    """The id of the team an object belongs to."""
    if isinstance(obj, Team):
        return obj.pk
    return obj.team_id


# Roles are also kept in the shared cache for a few seconds, so most requests check permissions without
# a query. Any membership change (accounts.signals) and any save of the user drop the entry at once.
ROLE_CACHE_SECONDS = 10


def roles_cache_key(user_id: int) -> str:
    """Cache key of a user's ``{team_id: role}``."""
    return f"team-roles:{user_id}"


def _load_roles(user: Any) -> dict[int, int]:
    # A cache outage only costs the query: read and write failures fall back to the database.
    try:
        stored = AUTH_ENTRIES.get(roles_cache_key(user.pk))
    except Exception:
        stored = None
    if stored is None:
        stored = dict(Membership.objects.filter(user=user).values_list("team_id", "role"))
        with contextlib.suppress(Exception):
            AUTH_ENTRIES.set(roles_cache_key(user.pk), stored, ROLE_CACHE_SECONDS)
    return stored


def team_roles(user: Any) -> dict[int, Role]:
    """All of a user's roles by team id, loaded once and cached on the user for this request."""
    if user is None or not user.is_authenticated:
        return {}
    cached = getattr(user, "_team_roles", None)
    if cached is None:
        cached = {team_id: Role(role) for team_id, role in _load_roles(user).items()}
        user._team_roles = cached
    return cached


def forget_cached_roles(user_id: int) -> None:
    """Drop a user's roles from the shared cache (a membership changed)."""
    try:
        AUTH_ENTRIES.forget([roles_cache_key(user_id)])
    except Exception:
        logger.warning("cache unavailable, could not drop cached roles of user %s", user_id)


def forget_roles(user: Any) -> None:
    """Drop the cached roles (after a membership change within the same request)."""
    if hasattr(user, "_team_roles"):
        del user._team_roles
    if getattr(user, "pk", None) is not None:
        forget_cached_roles(user.pk)


def role_in(user: Any, team_id: int) -> Role | None:
    """The user's role in a team, or None when not a member."""
    return team_roles(user).get(team_id)


def can(user: Any, action: Action | str, obj: Any) -> bool:
    """True when ``user`` may perform ``action`` on ``obj``."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    action = Action(action)
    if action is Action.READ and user.is_staff:
        return True
    role = role_in(user, team_id_of(obj))
    return role is not None and role >= REQUIRED_ROLE[action]


def authorize(user: Any, action: Action | str, obj: Any, *, label: str | None = None) -> None:
    """Raise NotFound for outsiders and Forbidden for members whose role is too low."""
    if can(user, action, obj):
        return
    name = label or type(obj).__name__
    if user is None or not user.is_authenticated or (not user.is_staff and role_in(user, team_id_of(obj)) is None):
        raise NotFound(f"{name} not found.")
    needed = REQUIRED_ROLE[Action(action)].label
    raise Forbidden(f"Your role does not allow this action; it needs the {needed} role or higher.")


def visible_team_ids(user: Any) -> list[int] | None:
    """Team ids whose objects the user may list; None means every team (staff)."""
    if isinstance(user, AnonymousUser) or not user.is_authenticated:
        return []
    if user.is_staff or user.is_superuser:
        return None
    return list(team_roles(user))


def restrict_to_visible(queryset: Any, user: Any, team_field: str = "team_id") -> Any:
    """Filter a queryset to objects in teams the user may read."""
    team_ids = visible_team_ids(user)
    if team_ids is None:
        return queryset
    return queryset.filter(**{f"{team_field}__in": team_ids})


METHOD_ACTIONS: dict[str, Action] = {
    "GET": Action.READ,
    "HEAD": Action.READ,
    "OPTIONS": Action.READ,
    "POST": Action.WRITE,
    "PUT": Action.WRITE,
    "PATCH": Action.WRITE,
    "DELETE": Action.DELETE,
}


class TeamObjectPermission(permissions.BasePermission):
    """DRF object permission built on ``authorize``; a view may set ``action_for_method``."""

    def has_permission(self, request: Any, view: Any) -> bool:
        """Only authenticated users reach object checks."""
        return bool(request.user and request.user.is_authenticated)

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        """Map the HTTP method to an action and authorize it (raising 404/403)."""
        overrides = getattr(view, "action_for_method", {})
        action = overrides.get(request.method, METHOD_ACTIONS.get(request.method, Action.WRITE))
        authorize(request.user, action, obj)
        return True
