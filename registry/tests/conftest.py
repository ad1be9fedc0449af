"""Fixtures for the registry tests: artifacts in a temp folder, a run with a logged model, a receiver."""

from __future__ import annotations

import io

import pytest

from experiments.artifacts import artifact_write
from experiments.tests.factories import ExperimentFactory, RunFactory
from registry.tests.factories import EnvironmentFactory, RegisteredModelFactory
from registry.tests.receiver import start_receiver


@pytest.fixture(autouse=True)
def artifact_root(settings, tmp_path):
    """Artifacts of every test live in its own temporary folder."""
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    return settings.ARTIFACT_ROOT


@pytest.fixture
def run(team, owner):
    """A run of ``team`` with a model logged at ``model/MLmodel``."""
    run = RunFactory(experiment=ExperimentFactory(team=team))
    artifact_write(user=owner, run=run, path="model/MLmodel", stream=io.BytesIO(b"flavors: {}"))
    return run


@pytest.fixture
def model(team):
    """A registered model of ``team``."""
    return RegisteredModelFactory(team=team, name="fraud")


@pytest.fixture
def staging(team):
    """First environment of the promotion path."""
    return EnvironmentFactory(team=team, name="staging", position=0)


@pytest.fixture
def production(team, staging):
    """Second (last) environment of the promotion path."""
    return EnvironmentFactory(team=team, name="production", position=1)


@pytest.fixture
def receiver():
    """A local HTTP receiver for webhook deliveries."""
    server = start_receiver()
    yield server
    server.stop()
