"""Authorization matrix declarations for every registry route."""

from django.utils import timezone

from registry.models import Alias, DeploymentStatus
from registry.tests.authz_routes_mlflow import REGISTRY_ROUTES
from registry.tests.factories import (
    AlertRuleFactory,
    DeploymentFactory,
    EnvironmentFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
    WebhookFactory,
)
from tests.authz import Route, World, statuses

SIGNED_IN = statuses(401, 200, 200, 200, 200, 200, 200)
READ = statuses(401, 404, 200, 200, 200, 200, 200)
FOREIGN_READ = statuses(401, 200, 404, 404, 404, 404, 200)


def write(ok: int) -> dict:
    return statuses(401, 404, 403, ok, ok, ok, 403)


def admin(ok: int) -> dict:
    return statuses(401, 404, 403, 403, ok, ok, 403)


def _model(world: World):
    return RegisteredModelFactory(team=world.team, name="fraud")


def model(world: World) -> dict:
    return {"model_id": _model(world).pk}


def foreign_model(world: World) -> dict:
    return {"model_id": RegisteredModelFactory(team=world.other_team).pk}


def model_tag(world: World) -> dict:
    found = _model(world)
    found.tags.create(key="owner", value="ml")
    return {"model_id": found.pk, "key": "owner"}


def version(world: World) -> dict:
    found = ModelVersionFactory(model=_model(world))
    return {"model_id": found.model_id, "number": found.version}


def version_tag(world: World) -> dict:
    found = ModelVersionFactory(model=_model(world))
    found.tags.create(key="k", value="v")
    return {"model_id": found.model_id, "number": found.version, "key": "k"}


def alias(world: World) -> dict:
    found = ModelVersionFactory(model=_model(world))
    Alias.objects.create(model=found.model, alias="champion", version=found)
    return {"model_id": found.model_id, "alias": "champion"}


def environment(world: World) -> dict:
    return {"environment_id": EnvironmentFactory(team=world.team).pk}


def _deployment(world: World):
    return DeploymentFactory(
        version=ModelVersionFactory(model=_model(world)), environment=EnvironmentFactory(team=world.team, position=0)
    )


def deployment(world: World) -> dict:
    return {"deployment_id": _deployment(world).pk}


def promotable(world: World) -> dict:
    found = _deployment(world)
    EnvironmentFactory(team=world.team, position=1)
    return {"deployment_id": found.pk}


def rollbackable(world: World) -> dict:
    env = EnvironmentFactory(team=world.team)
    first = ModelVersionFactory(model=_model(world))
    DeploymentFactory(version=first, environment=env, status=DeploymentStatus.RETIRED, went_live_at=timezone.now())
    current = DeploymentFactory(version=ModelVersionFactory(model=first.model), environment=env)
    return {"deployment_id": current.pk}


def foreign_deployment(world: World) -> dict:
    return {"deployment_id": DeploymentFactory(version=ModelVersionFactory(model__team=world.other_team)).pk}


def alert_rule(world: World) -> dict:
    rule = AlertRuleFactory(deployment=_deployment(world))
    return {"deployment_id": rule.deployment_id, "rule_id": rule.pk}


def deploy_body(world: World) -> dict:
    found = ModelVersionFactory(model=_model(world))
    env = EnvironmentFactory(team=world.team)
    return {"model": found.model_id, "version": found.version, "environment": env.pk}


def webhook(world: World) -> dict:
    return {"webhook_id": WebhookFactory(team=world.team).pk}


def foreign_webhook(world: World) -> dict:
    return {"webhook_id": WebhookFactory(team=world.other_team).pk}


ROUTES = [
    # Models
    Route("GET", "registry-model-list", SIGNED_IN),
    Route("POST", "registry-model-list", write(201), body=lambda w: {"team": w.team.pk, "name": "new"}),
    Route("GET", "registry-model-search", SIGNED_IN),
    Route("GET", "registry-model-detail", READ, kwargs=model),
    Route("GET", "registry-model-detail", FOREIGN_READ, kwargs=foreign_model),
    Route("PATCH", "registry-model-detail", write(200), kwargs=model, body=lambda w: {"description": "d"}),
    Route("DELETE", "registry-model-detail", admin(204), kwargs=model),
    Route("POST", "registry-model-tags", write(200), kwargs=model, body=lambda w: {"key": "k", "value": "v"}),
    Route("DELETE", "registry-model-tag-detail", write(204), kwargs=model_tag),
    Route("GET", "registry-model-latest-versions", READ, kwargs=model),
    # Versions
    Route("GET", "registry-version-list", READ, kwargs=model),
    Route("POST", "registry-version-list", write(201), kwargs=model, body=lambda w: {"source": "s3://bucket/model"}),
    Route("GET", "registry-version-detail", READ, kwargs=version),
    Route("PATCH", "registry-version-detail", write(200), kwargs=version, body=lambda w: {"description": "d"}),
    Route("DELETE", "registry-version-detail", admin(204), kwargs=version),
    Route("POST", "registry-version-tags", write(200), kwargs=version, body=lambda w: {"key": "k", "value": "v"}),
    Route("DELETE", "registry-version-tag-detail", write(204), kwargs=version_tag),
    Route("POST", "registry-version-stage", write(200), kwargs=version, body=lambda w: {"stage": "Staging"}),
    Route("GET", "registry-version-transitions", READ, kwargs=version),
    Route("GET", "registry-version-search", SIGNED_IN),
    # Aliases
    Route("GET", "registry-alias-list", READ, kwargs=model),
    Route("GET", "registry-alias-detail", READ, kwargs=alias),
    Route("PUT", "registry-alias-detail", write(200), kwargs=alias, body=lambda w: {"version": 1}),
    Route("DELETE", "registry-alias-detail", write(204), kwargs=alias),
    # Environments
    Route("GET", "registry-environment-list", SIGNED_IN),
    Route("POST", "registry-environment-list", admin(201), body=lambda w: {"team": w.team.pk, "name": "staging"}),
    Route("GET", "registry-environment-detail", READ, kwargs=environment),
    Route("PATCH", "registry-environment-detail", admin(200), kwargs=environment, body=lambda w: {"description": "d"}),
    Route("DELETE", "registry-environment-detail", admin(204), kwargs=environment),
    # Deployments
    Route("GET", "registry-deployment-list", SIGNED_IN),
    Route("POST", "registry-deployment-list", admin(201), body=deploy_body),
    Route("GET", "registry-deployment-detail", READ, kwargs=deployment),
    Route("GET", "registry-deployment-detail", FOREIGN_READ, kwargs=foreign_deployment),
    Route("POST", "registry-deployment-promote", admin(201), kwargs=promotable, body=lambda w: {}),
    Route("POST", "registry-deployment-rollback", admin(201), kwargs=rollbackable, body=lambda w: {}),
    Route("POST", "registry-deployment-status", admin(200), kwargs=deployment, body=lambda w: {"status": "retired"}),
    Route("GET", "registry-deployment-events", READ, kwargs=deployment),
    Route("GET", "registry-deployment-metrics", READ, kwargs=deployment),
    Route(
        "POST",
        "registry-deployment-metrics",
        write(201),
        kwargs=deployment,
        body=lambda w: {"metrics": [{"key": "latency_ms", "value": 12.5}]},
    ),
    Route("GET", "registry-alert-rule-list", READ, kwargs=deployment),
    Route(
        "POST",
        "registry-alert-rule-list",
        admin(201),
        kwargs=deployment,
        body=lambda w: {"metric": "latency_ms", "comparison": "gt", "threshold": 200},
    ),
    Route("GET", "registry-alert-rule-detail", READ, kwargs=alert_rule),
    Route("PATCH", "registry-alert-rule-detail", admin(200), kwargs=alert_rule, body=lambda w: {"threshold": 300}),
    Route("DELETE", "registry-alert-rule-detail", admin(204), kwargs=alert_rule),
    Route("GET", "registry-alert-list", READ, kwargs=deployment),
    # Webhooks
    Route("GET", "registry-webhook-list", SIGNED_IN),
    Route(
        "POST",
        "registry-webhook-list",
        admin(201),
        body=lambda w: {
            "team": w.team.pk,
            "name": "ops",
            "url": "https://h.example/x",
            "event_types": ["deployment.changed"],
        },
    ),
    Route("GET", "registry-webhook-detail", READ, kwargs=webhook),
    Route("GET", "registry-webhook-detail", FOREIGN_READ, kwargs=foreign_webhook),
    Route("PATCH", "registry-webhook-detail", admin(200), kwargs=webhook, body=lambda w: {"is_active": False}),
    Route("DELETE", "registry-webhook-detail", admin(204), kwargs=webhook),
    Route("POST", "registry-webhook-test", admin(202), kwargs=webhook),
    Route("GET", "registry-webhook-deliveries", READ, kwargs=webhook),
    # The MLflow façade's routes (unnamed; declared by route).
    *REGISTRY_ROUTES,
]
