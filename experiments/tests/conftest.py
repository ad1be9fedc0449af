"""Fixtures for the experiments tests: artifacts in a temporary folder, ready-made experiments and runs."""

from __future__ import annotations

import pytest

from experiments.tests.factories import ExperimentFactory, RunFactory


@pytest.fixture(autouse=True)
def artifact_root(settings, tmp_path):
    """Every test stores artifacts under its own temporary folder."""
    settings.ARTIFACT_ROOT = tmp_path / "artifacts"
    return settings.ARTIFACT_ROOT


@pytest.fixture
def experiment(team):
    """An active experiment in ``team``."""
    return ExperimentFactory(team=team, name="mnist")


@pytest.fixture
def run(experiment):
    """A running run in ``experiment``."""
    return RunFactory(experiment=experiment)


@pytest.fixture
def other_run(other_team):
    """A run in an experiment of ``other_team``."""
    return RunFactory(experiment=ExperimentFactory(team=other_team))
