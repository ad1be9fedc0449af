"""Fixtures shared by every app's tests: users per role, API clients, a real daphne server."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterator

import pytest
from django.core.files.storage import InMemoryStorage, storages
from django.db import connection
from rest_framework.test import APIClient

from accounts.models import Role
from accounts.tests.factories import MembershipFactory, TeamFactory, UserFactory
from tests.server import Server, database_url, server_env, start_daphne


@pytest.fixture(autouse=True)
def _isolated_login_throttle(settings) -> None:
    """Give each test its own failed-login counters, so wrong-password tests never trip later tests."""
    settings.LOGIN_THROTTLE = {**settings.LOGIN_THROTTLE, "NAMESPACE": uuid.uuid4().hex}


@pytest.fixture(autouse=True)
def _temporary_artifact_root(settings, tmp_path_factory) -> None:
    """Artifacts written by any test (API, MLflow façade, matrix) land in a temporary folder, never in ./var."""
    settings.ARTIFACT_ROOT = tmp_path_factory.mktemp("artifacts")


@pytest.fixture
def memory_artifact_storage(settings):
    """Artifacts in Django's ``InMemoryStorage`` instead of on disk: exercises the generic storage-API path.

    Changing ``STORAGES`` fires ``setting_changed``, on which Django drops its cached storage instances, so
    ``storages["artifacts"]`` is a fresh, empty in-memory store for this test (and the disk store after it).
    """
    settings.STORAGES = {**settings.STORAGES, "artifacts": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
    storage = storages["artifacts"]
    assert isinstance(storage, InMemoryStorage)
    return storage


@pytest.fixture
def team(db):
    """A team that the role fixtures below belong to."""
    return TeamFactory(name="vision")


@pytest.fixture
def other_team(db):
    """A team none of the role fixtures belong to."""
    return TeamFactory(name="other")


def _member(team, role: Role):
    return MembershipFactory(team=team, role=role).user


@pytest.fixture
def viewer(team):
    """A viewer of ``team``."""
    return _member(team, Role.VIEWER)


@pytest.fixture
def editor(team):
    """An editor of ``team``."""
    return _member(team, Role.EDITOR)


@pytest.fixture
def team_admin(team):
    """An admin of ``team``."""
    return _member(team, Role.ADMIN)


@pytest.fixture
def owner(team):
    """An owner of ``team``."""
    return _member(team, Role.OWNER)


@pytest.fixture
def outsider(other_team):
    """A member (owner) of another team only."""
    return _member(other_team, Role.OWNER)


@pytest.fixture
def staff(db):
    """A staff user in no team."""
    return UserFactory(is_staff=True)


@pytest.fixture
def api_client() -> APIClient:
    """An unauthenticated DRF test client."""
    return APIClient()


class FreshRolesAPIClient(APIClient):
    """APIClient whose forced user carries no roles from an earlier request, like a freshly loaded user.

    A real request loads its user afresh; force_authenticate reuses one instance, whose roles
    remembered on the instance would otherwise hide a role change made between two requests.
    Only the instance's memory is dropped, not the process's shared roles cache, so a missing
    cache invalidation still shows in these tests.
    """

    def request(self, **kwargs):
        if self.handler._force_user is not None:
            self.handler._force_user.__dict__.pop("_team_roles", None)
        return super().request(**kwargs)


@pytest.fixture
def client_for():
    """Make an API client logged in as a given user (or anonymous for None)."""

    def make(user) -> APIClient:
        client = FreshRolesAPIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture(scope="session")
def live_server_env(django_db_setup, django_db_blocker) -> dict[str, str]:
    """Environment for a daphne process that uses this session's test database."""
    with django_db_blocker.unblock():
        return server_env(database_url(connection.settings_dict))


@pytest.fixture(scope="session")
def daphne_server(live_server_env, tmp_path_factory) -> Iterator[Server]:
    """One real daphne process for the session; tests using it need ``transactional_db``."""
    server = start_daphne(live_server_env, tmp_path_factory.mktemp("daphne") / "daphne.log")
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _in_memory_layer_for_in_process_async_tests(request, settings):
    """Async tests that drive consumers inside the test process use the in-memory layer.

    With channels-redis, a cancelled receive inside pytest-asyncio's per-test event loop was seen to
    hang the loop's teardown for good on PostgreSQL + Redis CI runs. Redis fan-out stays covered for
    real by the tests that run daphne processes against Redis (tests/test_multiprocess_streaming.py).
    """
    if not inspect.iscoroutinefunction(getattr(request, "function", None)):
        yield
        return
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()
