"""Declarations for the authorization matrix (tests/test_authorization_matrix.py).

Every route under /api/ must be declared in some app's ``tests/authz_routes.py``
as ``ROUTES: list[Route]``. A route says how to build the object it acts on
inside ``world.team`` and which status each persona gets.

A named route is declared by its URL name. A pattern without a name (the MLflow
façade's, the catch-alls) is declared by its resolver route, exactly as
``route_key`` spells it (``"api/2.0/mlflow/experiments/get"``), with ``path``
building the URL to request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.urls import URLPattern, URLResolver

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

    ``url_name`` is the Django URL name (as in ``reverse``), or for an unnamed pattern its
    ``route_key``; ``kwargs`` builds the URL kwargs (creating objects in ``world.team`` as
    needed); ``path`` builds the whole URL instead (required for unnamed patterns, which
    cannot be reversed; a query string is allowed); ``body`` builds the request body;
    ``headers`` builds extra request headers (``{"X-Team": ...}``). ``expect`` maps every
    persona in PERSONAS to a status code.
    """

    method: str
    url_name: str
    expect: dict[str, int]
    kwargs: Callable[[World], dict[str, Any]] = lambda world: {}
    body: Callable[[World], Any] | None = None
    format: str = "json"
    path: Callable[[World], str] | None = None
    headers: Callable[[World], dict[str, str]] | None = None

    @property
    def case_id(self) -> str:
        """Readable id for parametrize."""
        return f"{self.method} {self.url_name}"


def statuses(
    anonymous: int, outsider: int, viewer: int, editor: int, admin: int, owner: int, staff: int
) -> dict[str, int]:
    """Spell an expectation row in PERSONAS order."""
    return dict(zip(PERSONAS, (anonymous, outsider, viewer, editor, admin, owner, staff), strict=True))


def route_key(pattern: URLPattern, route: str, namespace: str = "") -> str:
    """How a route is declared: its namespaced URL name, or its resolver route when it has no name."""
    return f"{namespace}{pattern.name}" if pattern.name else route


def walk_patterns(resolver: URLResolver, prefix: str = "", namespace: str = "") -> Any:
    """(key, route, pattern) for every pattern below ``resolver``, named or not, recursively."""
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern).lstrip("^")
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from walk_patterns(pattern, route, inner)
        elif isinstance(pattern, URLPattern):
            yield route_key(pattern, route, namespace), route, pattern
