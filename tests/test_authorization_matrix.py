"""The authorization matrix: every API route x every persona → the declared status.

Routes come from each installed project app's ``tests/authz_routes.py`` (``ROUTES``).
A second test walks the URL resolver so that no route under ``/api/``, named or not,
can be added without declaring it, and a third that no HTTP method of a declared
route's view is left out.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.urls import URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from accounts.models import Role
from accounts.tests.factories import MembershipFactory, TeamFactory, UserFactory
from tests.authz import PERSONAS, Route, World, walk_patterns

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
    if route.path is not None:
        url = route.path(world)
    else:
        url = reverse(route.url_name, kwargs={"version": "v1", **route.kwargs(world)})
    body = route.body(world) if route.body is not None else None
    headers = route.headers(world) if route.headers is not None else {}
    method = getattr(client, route.method.lower())
    if body is None:
        return method(url, headers=headers)
    if route.method.upper() in {"GET", "HEAD"}:
        return method(url, data=body, headers=headers)
    return method(url, data=body, format=route.format, headers=headers)


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


VIEW_METHODS = ("get", "post", "put", "patch", "delete")


def api_routes(resolver: URLResolver) -> dict[str, tuple[str, object]]:
    """key -> (route, pattern) for every pattern under ``api/``, named or not."""
    return {key: (route, pattern) for key, route, pattern in walk_patterns(resolver) if route.startswith("api/")}


def undeclared_api_routes(resolver: URLResolver, declared: set[str]) -> list[str]:
    """Routes under ``api/`` that no authz_routes.py declares, as readable lines."""
    return sorted(
        f"{key}  ({route})" if key != route else key
        for key, (route, _) in api_routes(resolver).items()
        if key not in declared
    )


def view_methods(pattern: object) -> set[str]:
    """HTTP methods a class-based view implements (empty for function views: unknown)."""
    view_class = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
    if view_class is None:
        return set()
    allowed = set(getattr(view_class, "http_method_names", VIEW_METHODS))
    return {name.upper() for name in VIEW_METHODS if name in allowed and hasattr(view_class, name)}


def test_every_api_route_is_declared():
    missing = undeclared_api_routes(get_resolver(), {route.url_name for route in ROUTES})
    assert not missing, "API routes missing from every tests/authz_routes.py:\n  " + "\n  ".join(missing)


def test_every_method_of_a_declared_route_is_declared():
    declared: dict[str, set[str]] = {}
    for route in ROUTES:
        declared.setdefault(route.url_name, set()).add(route.method.upper())
    missing = sorted(
        f"{method} {key}"
        for key, (_, pattern) in api_routes(get_resolver()).items()
        if key in declared
        for method in view_methods(pattern) - declared[key]
    )
    assert not missing, "methods of declared API routes missing from the matrix:\n  " + "\n  ".join(missing)


def test_a_route_added_without_a_declaration_is_reported():
    """The walker finds a new route, named or not, however deep it is included."""
    from django.http import HttpResponse
    from django.urls import include, path

    def view(request):
        return HttpResponse()

    urlconf = type(
        "urlconf",
        (),
        {
            "urlpatterns": [
                path("api/<version>/", include([path("things/", include([path("<int:pk>/", view, name="thing")]))])),
                path("api/2.0/mlflow/", include([path("things/get", view)])),
                path("api/2.0/mlflow/", include([path("known", view)])),
                path("pages/", view, name="page"),
            ]
        },
    )
    resolver = URLResolver(r"^/", urlconf)
    missing = undeclared_api_routes(resolver, declared={"known-name", "api/2.0/mlflow/known"})
    assert missing == ["api/2.0/mlflow/things/get", "thing  (api/<version>/things/<int:pk>/)"]
    assert undeclared_api_routes(resolver, declared={"thing", "api/2.0/mlflow/things/get"}) == ["api/2.0/mlflow/known"]


def test_walker_sees_nested_and_unnamed_routes():
    keys = {key: route for key, route, _ in walk_patterns(get_resolver())}
    assert keys["team-member-detail"] == "api/<version>/teams/<int:team_id>/members/<int:user_id>/"
    assert "admin:index" in keys
    assert keys["api/2.0/mlflow/runs/log-metric"] == "api/2.0/mlflow/runs/log-metric"
    assert "api/" in keys  # the catch-all, declared in accounts/tests/authz_routes.py
