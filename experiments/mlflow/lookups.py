"""How the façade finds experiments and runs from MLflow ids, and where new experiments go.

MLflow clients use experiment id "0" ("Default") when none is set: here that is an experiment
named "Default" in the caller's personal team (or the ``X-Team`` team), created on first use.
"""

from __future__ import annotations

from typing import Any

from accounts.models import Role
from accounts.permissions import Action, role_in
from accounts.services import personal_team_for
from experiments import selectors, services
from experiments.models import Experiment, Run
from mlplatform.errors import Conflict, NotFound
from mlplatform.mlflow_api import team_from_header

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"


def target_team(request: Any) -> Any:
    """The team new objects go to: the ``X-Team`` header's team, else the caller's personal team."""
    return team_from_header(request) or personal_team_for(request.user)


def default_experiment(request: Any) -> Experiment:
    """The caller's "Default" experiment (MLflow's id "0"), created on first use."""
    team = target_team(request)
    found = _by_name_in_team(request.user, DEFAULT_EXPERIMENT_NAME, team.pk)
    if found is not None:
        return found
    try:
        return services.experiment_create(user=request.user, team=team, name=DEFAULT_EXPERIMENT_NAME)
    except Conflict:  # created concurrently by another request of the same user
        found = _by_name_in_team(request.user, DEFAULT_EXPERIMENT_NAME, team.pk)
        if found is None:
            raise
        return found


def _by_name_in_team(user: Any, name: str, team_id: int) -> Experiment | None:
    return selectors.experiment_list(user=user, name=name, team_id=team_id, view="all", exact=True).first()


def experiment_for(request: Any, experiment_id: str, action: Action = Action.READ) -> Experiment:
    """The experiment an MLflow id names ("0" is the caller's Default), checked for ``action``."""
    if experiment_id == DEFAULT_EXPERIMENT_ID:
        experiment = default_experiment(request)
        return selectors.experiment_get(user=request.user, experiment_id=experiment.pk, action=action)
    if not experiment_id.isdigit():
        raise NotFound(f"No experiment with id {experiment_id!r} exists.")
    return selectors.experiment_get(user=request.user, experiment_id=experiment_id, action=action)


def experiment_by_name(request: Any, name: str) -> Experiment | None:
    """An experiment (active or deleted) by name among the caller's teams.

    With an ``X-Team`` header only that team is searched; otherwise the personal team wins, then the
    team with the lowest id, so a name shared by two teams resolves the same way every time.
    """
    header_team = team_from_header(request)
    candidates = selectors.experiment_list(
        user=request.user, name=name, team_id=header_team.pk if header_team else None, view="all", exact=True
    )
    user = request.user

    def preference(experiment: Experiment) -> tuple[bool, bool, int]:
        role = role_in(user, experiment.team_id)
        own_personal = experiment.team.is_personal and role == Role.OWNER
        return (not own_personal, role is None, experiment.team_id)

    found = sorted(candidates, key=preference)
    return found[0] if found else None


def run_for(request: Any, run_id: str, action: Action = Action.READ) -> Run:
    """A run by its MLflow id, checked for ``action``."""
    return selectors.run_get(user=request.user, run_uuid=run_id, action=action)


def run_to_log_to(request: Any, run_id: str) -> Run:
    """A run for the logging endpoints (identity fields only; see ``selectors.run_for_logging``)."""
    return selectors.run_for_logging(user=request.user, run_uuid=run_id)


def run_with_details(request: Any, run_id: str) -> Run:
    """A run with params, tags and latest metrics loaded, checked for READ."""
    return selectors.run_detail(user=request.user, run_uuid=run_id)
