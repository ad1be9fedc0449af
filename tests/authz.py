"""Declarations for the authorization matrix (tests/test_authorization_matrix.py).

Every route under /api/ must be declared in some app's ``tests/authz_routes.py``
as ``ROUTES: list[Route]``. A route says how to build the object it acts on
inside ``world.team`` and which status each persona gets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PERSONAS = ("anonymous", "outsider", "viewer", "editor", "admin", "owner", "staff")


@dataclass
class World:
    """The objects a matrix case starts from: ``team`` (personas' team), ``other_team``, ``users``."""

    team: Any
    other_team: Any
    users: dict[str, Any]  # persona -> user (None for anonymous)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """One (method, URL) of the API and the status each persona must get.

    ``url_name`` is the Django URL name (as in ``reverse``); ``kwargs`` builds the URL
    kwargs (creating objects in ``world.team`` as needed); ``body`` builds the request
    body. ``expect`` maps every persona in PERSONAS to a status code.
    """

    method: str
    url_name: str
    expect: dict[str, int]
    kwargs: Callable[[World], dict[str, Any]] = lambda world: {}
    body: Callable[[World], Any] | None = None
    format: str = "json"

    @property
    def case_id(self) -> str:
        """Readable id for parametrize."""
        return f"{self.method} {self.url_name}"


def statuses(
    anonymous: int, outsider: int, viewer: int, editor: int, admin: int, owner: int, staff: int
) -> dict[str, int]:
    """Spell an expectation row in PERSONAS order."""
    return dict(zip(PERSONAS, (anonymous, outsider, viewer, editor, admin, owner, staff), strict=True))
