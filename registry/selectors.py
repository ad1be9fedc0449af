"""Every read of the registry, restricted to what the caller may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from accounts.models import Team
from accounts.permissions import Action, authorize, restrict_to_visible
from experiments import search
from mlplatform.errors import InvalidInput, NotFound
from registry import search as registry_search
from registry.models import (
    Alert,
    AlertRule,
    Alias,
    Deployment,
    DeploymentEvent,
    Environment,
    ModelVersion,
    ModelVersionTag,
    MonitoringMetric,
    RegisteredModel,
    RegisteredModelTag,
    Stage,
    StageTransition,
    Webhook,
    WebhookDelivery,
)
from registry.services import deployment_data, event_data, parse_stage

MODEL_SEARCH_MAX = 1000
VERSION_SEARCH_MAX = 200_000


def _visible_get(queryset: QuerySet, user: Any, label: str, **lookup: Any) -> Any:
    """One object by lookup, readable by ``user`` (404 for outsiders and missing objects alike)."""
    obj = queryset.filter(**lookup).first()
    if obj is None:
        raise NotFound(f"{label} not found.")
    authorize(user, Action.READ, obj, label=label)
    return obj


def model_queryset() -> QuerySet:
    """Registered models with their tags, aliases and team, for listing and detail."""
    return RegisteredModel.objects.select_related("team", "created_by").prefetch_related(
        Prefetch("tags", queryset=RegisteredModelTag.objects.order_by("key")),
        Prefetch("aliases", queryset=Alias.objects.select_related("version").order_by("alias")),
    )


def version_queryset() -> QuerySet:
    """Model versions with their model, run, tags and aliases."""
    return ModelVersion.objects.select_related("model", "run", "created_by").prefetch_related(
        Prefetch("tags", queryset=ModelVersionTag.objects.order_by("key")),
        Prefetch("aliases", queryset=Alias.objects.order_by("alias")),
    )


def registered_model_get(*, user: Any, name: str, team: Team | int | None = None) -> RegisteredModel:
    """A model by name (within ``team`` when given; else among the teams the user can see)."""
    models = restrict_to_visible(model_queryset().filter(name=name), user)
    if team is not None:
        models = models.filter(team_id=team.pk if isinstance(team, Team) else team)
    found = list(models[:2])
    if not found:
        raise NotFound(f"Registered model {name!r} not found.")
    if len(found) > 1:
        raise InvalidInput(
            f"Registered model name {name!r} exists in several of your teams; say which team.",
            details={"teams": sorted(m.team.name for m in found)},
        )
    authorize(user, Action.READ, found[0], label="Registered model")
    return found[0]


def registered_model_by_id(*, user: Any, model_id: int) -> RegisteredModel:
    """A model by id, readable by the user."""
    return _visible_get(model_queryset(), user, "Registered model", pk=model_id)


def registered_model_list(*, user: Any, team: int | None = None, name_contains: str | None = None) -> QuerySet:
    """Models in the user's teams, optionally one team's or matching part of a name."""
    models = restrict_to_visible(model_queryset(), user)
    if team is not None:
        models = models.filter(team_id=team)
    if name_contains:
        models = models.filter(name__icontains=name_contains)
    return models


def model_version_get(*, user: Any, model: RegisteredModel, version: int) -> ModelVersion:
    """One version of a model by number."""
    authorize(user, Action.READ, model, label="Registered model")
    found = version_queryset().filter(model=model, version=version).first()
    if found is None:
        raise NotFound(f"Registered model {model.name!r} has no version {version}.")
    return found


def model_version_by_alias(*, user: Any, model: RegisteredModel, alias: str) -> ModelVersion:
    """The version an alias points at."""
    authorize(user, Action.READ, model, label="Registered model")
    found = version_queryset().filter(model=model, aliases__alias=alias).first()
    if found is None:
        raise NotFound(f"Registered model {model.name!r} has no alias {alias!r}.")
    return found


def model_version_list(*, user: Any, model: RegisteredModel, stage: str | None = None) -> QuerySet:
    """A model's versions, newest first, optionally in one stage."""
    authorize(user, Action.READ, model, label="Registered model")
    versions = version_queryset().filter(model=model)
    if stage:
        versions = versions.filter(current_stage=parse_stage(stage))
    return versions.order_by("-version")


def latest_versions(*, user: Any, model: RegisteredModel, stages: list[str] | None = None) -> list[ModelVersion]:
    """The highest version in each stage (every stage when ``stages`` is empty), like MLflow."""
    authorize(user, Action.READ, model, label="Registered model")
    wanted = [parse_stage(stage) for stage in stages] if stages else list(Stage)
    latest: dict[str, ModelVersion] = {}
    for version in version_queryset().filter(model=model, current_stage__in=wanted).order_by("-version"):
        latest.setdefault(version.current_stage, version)
    return sorted(latest.values(), key=lambda v: v.version)


def alias_list(*, user: Any, model: RegisteredModel) -> QuerySet:
    """A model's aliases."""
    authorize(user, Action.READ, model, label="Registered model")
    return Alias.objects.filter(model=model).select_related("version", "updated_by").order_by("alias")


def stage_transitions(*, user: Any, version: ModelVersion) -> QuerySet:
    """A version's stage history, newest first."""
    authorize(user, Action.READ, version, label="Model version")
    return StageTransition.objects.filter(version=version).select_related("user")


def _search(
    schema: search.Schema,
    queryset: QuerySet,
    *,
    filter_string: str,
    order_by: list[str] | None,
    max_results: int,
    limit: int,
    page_token: str | None,
) -> tuple[list[Any], str | None]:
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= limit:
        raise InvalidInput(f"max_results must be a whole number from 1 to {limit}.")
    queryset = search.apply(schema, queryset, filter_string=filter_string, order_by=order_by)
    return search.page(queryset, page_token=page_token, max_results=max_results)


def search_registered_models(
    *,
    user: Any,
    filter_string: str = "",
    order_by: list[str] | None = None,
    max_results: int = 100,
    page_token: str | None = None,
) -> tuple[list[RegisteredModel], str | None]:
    """MLflow ``search_registered_models``: filter on ``name`` and ``tags.<key>``; returns (models, next token)."""
    return _search(
        registry_search.MODELS,
        restrict_to_visible(model_queryset(), user),
        filter_string=filter_string,
        order_by=order_by,
        max_results=max_results,
        limit=MODEL_SEARCH_MAX,
        page_token=page_token,
    )


def search_model_versions(
    *,
    user: Any,
    filter_string: str = "",
    order_by: list[str] | None = None,
    max_results: int = 10_000,
    page_token: str | None = None,
) -> tuple[list[ModelVersion], str | None]:
    """MLflow ``search_model_versions``: ``name``, ``run_id``, ``source_path``, ``version_number``, tags."""
    return _search(
        registry_search.VERSIONS,
        restrict_to_visible(version_queryset(), user),
        filter_string=filter_string,
        order_by=order_by,
        max_results=max_results,
        limit=VERSION_SEARCH_MAX,
        page_token=page_token,
    )


# --------------------------------------------------------------------------- environments and deployments


def environment_list(*, user: Any, team: int | None = None) -> QuerySet:
    """Environments of the user's teams in promotion order."""
    environments = restrict_to_visible(Environment.objects.select_related("team"), user)
    if team is not None:
        environments = environments.filter(team_id=team)
    return environments.order_by("team_id", "position")


def environment_get(*, user: Any, environment_id: int) -> Environment:
    """One environment readable by the user."""
    return _visible_get(Environment.objects.select_related("team"), user, "Environment", pk=environment_id)


def deployment_queryset() -> QuerySet:
    """Deployments with what their listing shows."""
    return Deployment.objects.select_related("model", "version", "environment", "created_by")


def deployment_get(*, user: Any, deployment_id: int) -> Deployment:
    """One deployment readable by the user."""
    return _visible_get(deployment_queryset(), user, "Deployment", pk=deployment_id)


def deployment_list(
    *,
    user: Any,
    team: int | None = None,
    model: int | None = None,
    environment: int | None = None,
    status: str | None = None,
) -> QuerySet:
    """Deployments in the user's teams, filtered; "which model is live in production?" is status=live."""
    deployments = restrict_to_visible(deployment_queryset(), user)
    if team is not None:
        deployments = deployments.filter(team_id=team)
    if model is not None:
        deployments = deployments.filter(model_id=model)
    if environment is not None:
        deployments = deployments.filter(environment_id=environment)
    if status:
        deployments = deployments.filter(status=status)
    return deployments


def deployment_events(*, user: Any, deployment: Deployment, since: int | None = None) -> QuerySet:
    """A deployment's events in order, optionally only those after ``since``."""
    authorize(user, Action.READ, deployment, label="Deployment")
    events = DeploymentEvent.objects.filter(deployment=deployment).select_related("actor")
    if since is not None:
        events = events.filter(seq__gt=since)
    return events.order_by("seq")


def monitoring_metrics(
    *, user: Any, deployment: Deployment, key: str | None = None, since_seq: int | None = None
) -> QuerySet:
    """A deployment's monitoring points, oldest first."""
    authorize(user, Action.READ, deployment, label="Deployment")
    points = MonitoringMetric.objects.filter(deployment=deployment)
    if key:
        points = points.filter(key=key)
    if since_seq is not None:
        points = points.filter(seq__gt=since_seq)
    return points


def alert_rule_list(*, user: Any, deployment: Deployment) -> QuerySet:
    """A deployment's alert rules."""
    authorize(user, Action.READ, deployment, label="Deployment")
    return AlertRule.objects.filter(deployment=deployment).order_by("id")


def alert_rule_get(*, user: Any, deployment: Deployment, rule_id: int) -> AlertRule:
    """One alert rule of a deployment."""
    authorize(user, Action.READ, deployment, label="Deployment")
    rule = AlertRule.objects.select_related("deployment").filter(deployment=deployment, pk=rule_id).first()
    if rule is None:
        raise NotFound("Alert rule not found.")
    return rule


def alert_list(*, user: Any, deployment: Deployment, state: str | None = None) -> QuerySet:
    """A deployment's alerts, newest first."""
    authorize(user, Action.READ, deployment, label="Deployment")
    alerts = Alert.objects.filter(deployment=deployment).select_related("rule")
    if state:
        alerts = alerts.filter(state=state)
    return alerts


def deployment_backlog(*, deployment: Deployment, since: int, limit: int = 10_000) -> list[dict[str, Any]]:
    """Live messages with seq > ``since``, rebuilt from the database for a reconnecting client."""
    messages: dict[int, dict[str, Any]] = {}
    points = (
        MonitoringMetric.objects.filter(deployment=deployment, seq__gt=since)
        .order_by("seq", "id")
        .values_list("seq", "key", "timestamp", "value")[:limit]
    )
    for seq, key, timestamp, value in points:
        message = messages.setdefault(
            seq, {"v": 1, "deployment_id": deployment.pk, "seq": seq, "kind": "metrics", "metrics": {}}
        )
        message["metrics"].setdefault(key, []).append([timestamp, float("nan") if value is None else value])
    current = deployment_data(deployment)
    for event in DeploymentEvent.objects.filter(deployment=deployment, seq__gt=since).select_related("actor")[:limit]:
        kind = "alert" if event.kind in ("alert_raised", "alert_resolved") else "status"
        messages[event.seq] = {
            "v": 1,
            "deployment_id": deployment.pk,
            "seq": event.seq,
            "kind": kind,
            "event": event_data(event),
            "deployment": current,
        }
    return [messages[seq] for seq in sorted(messages)]


# --------------------------------------------------------------------------- webhooks


def webhook_list(*, user: Any, team: int | None = None) -> QuerySet:
    """Webhooks of the user's teams."""
    hooks = restrict_to_visible(Webhook.objects.select_related("team"), user)
    if team is not None:
        hooks = hooks.filter(team_id=team)
    return hooks


def webhook_get(*, user: Any, webhook_id: int) -> Webhook:
    """One webhook readable by the user."""
    return _visible_get(Webhook.objects.select_related("team"), user, "Webhook", pk=webhook_id)


def webhook_deliveries(*, user: Any, webhook: Webhook, status: str | None = None) -> QuerySet:
    """A webhook's delivery attempts, newest first."""
    authorize(user, Action.READ, webhook, label="Webhook")
    deliveries = WebhookDelivery.objects.filter(webhook=webhook)
    if status:
        deliveries = deliveries.filter(status=status)
    return deliveries
