"""factory-boy factories for the registry."""

from __future__ import annotations

import factory
from django.utils import timezone

from accounts.tests.factories import TeamFactory
from registry.models import (
    AlertRule,
    Deployment,
    DeploymentStatus,
    Environment,
    ModelVersion,
    RegisteredModel,
    Webhook,
)


class RegisteredModelFactory(factory.django.DjangoModelFactory):
    """A registered model in a new team."""

    class Meta:
        model = RegisteredModel

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"model-{n}")


class ModelVersionFactory(factory.django.DjangoModelFactory):
    """The next version of a model (numbers follow the model's counter)."""

    class Meta:
        model = ModelVersion

    model = factory.SubFactory(RegisteredModelFactory)
    team = factory.LazyAttribute(lambda v: v.model.team)
    source = "s3://bucket/model"

    @factory.lazy_attribute
    def version(self) -> int:
        self.model.last_version += 1
        RegisteredModel.objects.filter(pk=self.model.pk).update(last_version=self.model.last_version)
        return self.model.last_version


class EnvironmentFactory(factory.django.DjangoModelFactory):
    """An environment; positions follow creation order."""

    class Meta:
        model = Environment

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"env-{n}")
    position = factory.Sequence(lambda n: n)


class DeploymentFactory(factory.django.DjangoModelFactory):
    """A live deployment of a version in an environment of the same team."""

    class Meta:
        model = Deployment

    version = factory.SubFactory(ModelVersionFactory)
    model = factory.LazyAttribute(lambda d: d.version.model)
    team = factory.LazyAttribute(lambda d: d.version.team)
    environment = factory.LazyAttribute(lambda d: EnvironmentFactory(team=d.version.team))
    status = DeploymentStatus.LIVE
    went_live_at = factory.LazyFunction(timezone.now)


class AlertRuleFactory(factory.django.DjangoModelFactory):
    """latency_ms mean over 60 s above 100."""

    class Meta:
        model = AlertRule

    deployment = factory.SubFactory(DeploymentFactory)
    metric = "latency_ms"
    comparison = "gt"
    threshold = 100.0
    window_seconds = 60


class WebhookFactory(factory.django.DjangoModelFactory):
    """An active webhook subscribed to every event type."""

    class Meta:
        model = Webhook

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"hook-{n}")
    url = "http://127.0.0.1:9/hook"
    secret = "whsec_test-secret"
    event_types = factory.LazyFunction(
        lambda: [
            "model_version.created",
            "model_version.stage_changed",
            "model_version.alias_changed",
            "deployment.changed",
            "monitoring.alert",
        ]
    )
