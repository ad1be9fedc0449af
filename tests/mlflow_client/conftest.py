"""Fixtures for driving the unchanged ``mlflow`` client against a real daphne server.

The server is the project's own (``tests.server.start_daphne`` on this session's test database);
this package starts one with ``ARTIFACT_ROOT`` in a temporary folder so uploaded artifacts never
land in the working tree. Tests mark themselves ``transactional_db`` so the server sees their rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection

from accounts.models import Role
from accounts.services import api_token_create
from accounts.tests.factories import DEFAULT_PASSWORD, MembershipFactory, TeamFactory, UserFactory
from tests.server import Server, database_url, server_env, start_daphne


@pytest.fixture(autouse=True)
def artifact_root(settings, tmp_path) -> Path:
    """In-process requests (Django test client) store artifacts under the test's temporary folder."""
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    return settings.ARTIFACT_ROOT


@dataclass
class MlflowServer:
    """The running server and where it keeps artifacts."""

    server: Server
    artifact_root: Path

    @property
    def url(self) -> str:
        """Base URL for MLFLOW_TRACKING_URI."""
        return self.server.url


@pytest.fixture(scope="session")
def mlflow_server(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[MlflowServer]:
    """One daphne process for the MLflow client tests, with its own artifact folder."""
    artifact_root = tmp_path_factory.mktemp("mlflow-artifacts")
    with django_db_blocker.unblock():
        env = server_env(database_url(connection.settings_dict), ARTIFACT_ROOT=str(artifact_root))
    server = start_daphne(env, tmp_path_factory.mktemp("mlflow-daphne") / "daphne.log")
    yield MlflowServer(server=server, artifact_root=artifact_root)
    server.stop()


@dataclass
class ClientUser:
    """A user the mlflow client logs in as, with an API token and a shared team."""

    user: object
    token: str
    team: object


@pytest.fixture
def mlflow_user(transactional_db) -> ClientUser:
    """An editor of team "vision" (plus their own personal team) with an API token."""
    user = UserFactory(username="alice")
    team = TeamFactory(name="vision", slug="vision")
    MembershipFactory(user=user, team=team, role=Role.ADMIN)
    _token, plaintext = api_token_create(user=user, name="mlflow")
    return ClientUser(user=user, token=plaintext, team=team)


@pytest.fixture
def mlflow_env(mlflow_server, mlflow_user, monkeypatch, tmp_path) -> ClientUser:
    """Point the mlflow client at the server, authenticated by the user's API token (Bearer)."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", mlflow_user.token)
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    # Fail fast instead of retrying 5xx for minutes: a 5xx is a bug these tests must show at once.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.chdir(tmp_path)
    _reset_fluent_state()
    mlflow.set_tracking_uri(mlflow_server.url)
    mlflow.set_registry_uri(mlflow_server.url)
    yield mlflow_user
    while mlflow.active_run():
        mlflow.end_run()
    _reset_fluent_state()


def _reset_fluent_state() -> None:
    """Forget the experiment the fluent API remembers (a global and env vars), so tests do not leak."""
    import mlflow.tracking.fluent as fluent

    fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)


@pytest.fixture
def basic_auth_env(mlflow_env, monkeypatch) -> ClientUser:
    """The same user, authenticated by MLFLOW_TRACKING_USERNAME/PASSWORD (HTTP Basic), the API token as password."""
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", mlflow_env.user.username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", mlflow_env.token)
    return mlflow_env


@pytest.fixture
def password_auth_env(basic_auth_env, monkeypatch) -> ClientUser:
    """HTTP Basic with the account password, hashed with a hasher the (production-settings) server knows."""
    hasher = PBKDF2PasswordHasher()
    user = basic_auth_env.user
    user.password = hasher.encode(DEFAULT_PASSWORD, hasher.salt())
    user.save(update_fields=["password"])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", DEFAULT_PASSWORD)
    return basic_auth_env
