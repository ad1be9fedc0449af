"""Template context for every page: the user's teams for the header's team switcher."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from accounts.selectors import user_memberships

SESSION_TEAM_KEY = "pages_team_id"


@dataclass
class Nav:
    """Header data, computed only when a template reads it (admin and API responses never pay for it)."""

    request: HttpRequest
    version: str = field(default_factory=lambda: getattr(settings, "VERSION", ""))

    @cached_property
    def teams(self) -> list[Any]:
        """The user's memberships (with teams), by team name."""
        user = getattr(self.request, "user", None)
        if user is None or not user.is_authenticated:
            return []
        return list(user_memberships(user=user))

    @property
    def current_team_id(self) -> int | None:
        """The team chosen in the switcher, or None for all the user's teams."""
        return current_team_id(self.request)


def current_team_id(request: HttpRequest) -> int | None:
    """The team id the user switched to (kept in the session), or None."""
    session = getattr(request, "session", None)
    value = session.get(SESSION_TEAM_KEY) if session is not None else None
    return value if isinstance(value, int) else None


def nav(request: HttpRequest) -> dict[str, Any]:
    """Context processor: ``nav`` for the header."""
    return {"nav": Nav(request)}
