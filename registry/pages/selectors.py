"""Reads that only the registry pages need: a model's stage history, what is live where, recent monitoring."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts.permissions import Action, authorize, restrict_to_visible
from registry.models import (
    Deployment,
    DeploymentStatus,
    MonitoringMetric,
    RegisteredModel,
    StageTransition,
)
from registry.selectors import deployment_queryset

CHART_POINTS_PER_KEY = 1000
MAX_MONITORING_KEYS = 12


def model_stage_history(*, user: Any, model: RegisteredModel, limit: int = 100) -> QuerySet[StageTransition]:
    """Stage transitions of every version of a model, newest first."""
    authorize(user, Action.READ, model, label="Registered model")
    return (
        StageTransition.objects.filter(version__model=model)
        .select_related("version", "user")
        .order_by("-created_at", "-id")[:limit]
    )


def live_deployments(*, user: Any, team_id: int | None = None, model_id: int | None = None) -> QuerySet[Deployment]:
    """Live deployments the user may see, by environment order then model name."""
    deployments = restrict_to_visible(deployment_queryset().filter(status=DeploymentStatus.LIVE), user)
    if team_id is not None:
        deployments = deployments.filter(team_id=team_id)
    if model_id is not None:
        deployments = deployments.filter(model_id=model_id)
    return deployments.order_by("environment__team_id", "environment__position", "model__name")


def recent_deployments(*, user: Any, team_id: int | None = None, limit: int = 20) -> QuerySet[Deployment]:
    """The newest deployments of any status."""
    deployments = restrict_to_visible(deployment_queryset(), user)
    if team_id is not None:
        deployments = deployments.filter(team_id=team_id)
    return deployments.order_by("-created_at", "-id")[:limit]


def version_deployments(*, user: Any, version_id: int, team_id: int) -> QuerySet[Deployment]:
    """Every deployment of one model version (the caller has authorized the version)."""
    return deployment_queryset().filter(version_id=version_id, team_id=team_id).order_by("-created_at", "-id")


def monitoring_series(*, user: Any, deployment: Deployment) -> dict[str, list[list[Any]]]:
    """The newest points of each monitoring key as ``{key: [[timestamp, value], ...]}``, oldest first."""
    authorize(user, Action.READ, deployment, label="Deployment")
    points = MonitoringMetric.objects.filter(deployment=deployment)
    keys = list(points.values_list("key", flat=True).distinct().order_by("key")[:MAX_MONITORING_KEYS])
    series: dict[str, list[list[Any]]] = {}
    for key in keys:
        rows = list(
            points.filter(key=key)
            .order_by("-timestamp", "-id")
            .values_list("timestamp", "value")[:CHART_POINTS_PER_KEY]
        )
        series[key] = [[timestamp, "NaN" if value is None else value] for timestamp, value in reversed(rows)]
    return series
