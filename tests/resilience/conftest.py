"""Fixtures for the resilience suite: a team with an editor, its API token, an experiment and a run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from accounts.models import Role
from accounts.services import api_token_create
from accounts.tests.factories import MembershipFactory, TeamFactory
from experiments import services


@dataclass
class Workspace:
    """Committed objects a test drives through the API: editor (with token), admin, experiment, run."""

    team: Any
    editor: Any
    admin: Any
    token: str
    admin_token: str
    experiment: Any
    run: Any

    def headers(self, *, admin: bool = False) -> dict[str, str]:
        """Authorization header for the editor (or the admin)."""
        return {"Authorization": f"Bearer {self.admin_token if admin else self.token}"}


def make_workspace(name: str = "resilience") -> Workspace:
    """Create the objects of a ``Workspace`` (the caller provides database access)."""
    team = TeamFactory(name=name)
    editor = MembershipFactory(team=team, role=Role.EDITOR).user
    admin = MembershipFactory(team=team, role=Role.ADMIN).user
    _, token = api_token_create(user=editor, name="resilience")
    _, admin_token = api_token_create(user=admin, name="resilience-admin")
    experiment = services.experiment_create(user=editor, team=team, name=f"{name}-experiment")
    run = services.run_create(user=editor, experiment=experiment, name=f"{name}-run")
    return Workspace(team, editor, admin, token, admin_token, experiment, run)


@pytest.fixture
def workspace(db) -> Workspace:
    """A workspace inside the test's transaction (for the in-process test client)."""
    return make_workspace()


@pytest.fixture
def live_workspace(transactional_db) -> Workspace:
    """A committed workspace, visible to a daphne process on the test database."""
    return make_workspace("live")
