"""The authorization matrix: every API route x every persona → the declared status.

Routes come from each installed project app's ``tests/authz_routes.py`` (``ROUTES``).
A second test walks the URL resolver so that no named route under ``/api/`` can be
added without declaring it here.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from accounts.models import Role
from accounts.tests.factories import MembershipFactory, TeamFactory, UserFactory
from tests.authz import PERSONAS, Route, World

MEMBER_ROLES = {"viewer": Role.VIEWER, "editor": Role.EDITOR, "admin": Role.ADMIN, "owner": Role.OWNER}


def project_apps() -> list:
    """Installed apps that live in this repository (not in site-packages)."""
    base = Path(settings.BASE_DIR).resolve()
    return [app for app in apps.get_app_configs() if Path(app.path).resolve().parent == base]


def collect_routes() -> list[Route]:
    """ROUTES from every project app that has a ``tests/authz_routes.py``."""
    routes: list[Route] = []
    for app in project_apps():
        module_name = f"{app.name}.tests.authz_routes"
        try:
            spec = importlib.util.find_spec(module_name)
        except ModuleNotFoundError:  # the app has no tests package
            spec = None
        if spec is None:
            continue
        routes.extend(importlib.import_module(module_name).ROUTES)
    return routes


ROUTES = collect_routes()
CASES = [pytest.param(route, persona, id=f"{route.case_id}-{persona}") for route in ROUTES for persona in PERSONAS]


def build_world() -> World:
    """The team under test, another team, and one user per persona."""
    team = TeamFactory(name="matrix team", slug="matrix-team")
    other_team = TeamFactory(name="matrix other", slug="matrix-other")
    users: dict = {"anonymous": None}
    for persona, role in MEMBER_ROLES.items():
        users[persona] = MembershipFactory(team=team, role=role, user__username=f"matrix-{persona}").user
    users["outsider"] = MembershipFactory(team=other_team, role=Role.OWNER, user__username="matrix-outsider").user
    users["staff"] = UserFactory(username="matrix-staff", is_staff=True)
    return World(team=team, other_team=other_team, users=users)


def issue(route: Route, world: World, persona: str):
    """Send the route's request as the persona and return the response."""
    client = APIClient()
    user = world.users[persona]
    if user is not None:
        client.force_authenticate(user)
    url = reverse(route.url_name, kwargs={"version": "v1", **route.kwargs(world)})
    body = route.body(world) if route.body is not None else None
    method = getattr(client, route.method.lower())
    if body is None:
        return method(url)
    if route.method.upper() in {"GET", "HEAD"}:
        return method(url, data=body)
    return method(url, data=body, format=route.format)


def describe(response) -> str:
    """The response body, for the failure message."""
    try:
        return json.dumps(response.json(), indent=2)[:4000]
    except (ValueError, TypeError):
        return response.content[:2000].decode("utf-8", "replace")


def test_matrix_has_routes():
    assert any(route.url_name == "me" for route in ROUTES), "accounts/tests/authz_routes.py was not collected"


@pytest.mark.parametrize("route", [pytest.param(r, id=r.case_id) for r in ROUTES])
def test_route_declares_every_persona(route: Route):
    assert set(route.expect) == set(PERSONAS), f"{route.case_id}: expect must list exactly {PERSONAS}"


@pytest.mark.parametrize(("route", "persona"), CASES)
def test_authorization_matrix(db, route: Route, persona: str):
    world = build_world()
    response = issue(route, world, persona)
    expected = route.expect[persona]
    assert response.status_code == expected, (
        f"{route.method} {route.url_name} as {persona}: expected {expected}, got {response.status_code}\n"
        f"{describe(response)}"
    )
    if response.status_code == 401:
        assert response.has_header("WWW-Authenticate"), "401 responses must carry a WWW-Authenticate challenge"


def walk_named_patterns(resolver: URLResolver, prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str]]:
    """(url name, route) for every named pattern below ``resolver``, recursively."""
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern).lstrip("^")
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from walk_named_patterns(pattern, route, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}{pattern.name}", route


def test_every_api_route_is_declared():
    declared = {route.url_name for route in ROUTES}
    api_routes = {name: route for name, route in walk_named_patterns(get_resolver()) if route.startswith("api/")}
    missing = sorted(f"{name}  ({route})" for name, route in api_routes.items() if name not in declared)
    assert not missing, "API routes missing from every tests/authz_routes.py:\n  " + "\n  ".join(missing)


def test_walker_sees_nested_routes():
    names = dict(walk_named_patterns(get_resolver()))
    assert names["team-member-detail"] == "api/<version>/teams/<int:team_id>/members/<int:user_id>/"
    assert "admin:index" in names
