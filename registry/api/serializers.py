"""Small input and output serializers of the registry API (inputs are parsed here, rules live in services)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from mlplatform.fields import TagMapField
from registry.models import (
    Alert,
    AlertRule,
    Alias,
    Comparison,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    Environment,
    ModelVersion,
    MonitoringMetric,
    RegisteredModel,
    Stage,
    StageTransition,
    Webhook,
    WebhookDelivery,
)

# Ids and numbers above int64 would overflow the database driver (a 500) instead of simply matching nothing.
MAX_ID = 2**63 - 1


def _username(user: Any) -> str | None:
    return user.get_username() if user is not None else None


# --------------------------------------------------------------------------- inputs


class RegistryTagInput(serializers.Serializer):
    """``{key, value}``."""

    key = serializers.CharField(max_length=250, trim_whitespace=False)
    value = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=5000)


class ModelCreateInput(serializers.Serializer):
    """Register a model name; ``team`` defaults to the caller's personal team."""

    team = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    name = serializers.CharField(max_length=256)
    description = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    tags = RegistryTagInput(many=True, required=False)


class ModelUpdateInput(serializers.Serializer):
    """Rename and/or describe a model."""

    name = serializers.CharField(max_length=256, required=False)
    description = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)


class VersionCreateInput(serializers.Serializer):
    """Register a version from an artifact source, usually ``runs:/<run_id>/<path>``."""

    source = serializers.CharField(max_length=500)
    run_id = serializers.CharField(required=False, allow_blank=True, max_length=32)
    run_link = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    description = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    tags = RegistryTagInput(many=True, required=False)


class VersionDescriptionInput(serializers.Serializer):
    """``{description}``."""

    description = serializers.CharField(allow_blank=True, trim_whitespace=False)


class StageInput(serializers.Serializer):
    """Move a version to an MLflow stage (case-insensitive)."""

    stage = serializers.CharField(max_length=32)
    archive_existing_versions = serializers.BooleanField(required=False, default=False)
    comment = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)


class AliasInput(serializers.Serializer):
    """Point the alias at a version number."""

    version = serializers.IntegerField(min_value=1, max_value=MAX_ID)


class RegistrySearchInput(serializers.Serializer):
    """MLflow-style search: filter string, order_by clauses, page size and token."""

    filter = serializers.CharField(required=False, allow_blank=True, default="")
    order_by = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    max_results = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    page_token = serializers.CharField(required=False, allow_blank=True, default="")


class ModelListQuery(serializers.Serializer):
    """Filters of the model list."""

    team = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    search = serializers.CharField(required=False, allow_blank=True)


class StagesQuery(serializers.Serializer):
    """``?stages=Staging&stages=Production``."""

    stages = serializers.ListField(child=serializers.CharField(), required=False, default=list)


class EnvironmentCreateInput(serializers.Serializer):
    """Add an environment to a team's promotion path (last by default)."""

    team = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    name = serializers.CharField(max_length=100)
    position = serializers.IntegerField(required=False, min_value=0, max_value=10_000)
    description = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)


class EnvironmentUpdateInput(serializers.Serializer):
    """Rename, re-order or describe an environment."""

    name = serializers.CharField(max_length=100, required=False)
    position = serializers.IntegerField(required=False, min_value=0, max_value=10_000)
    description = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)


class RegistryTeamQuery(serializers.Serializer):
    """``?team=<id>``."""

    team = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)


class DeployInput(serializers.Serializer):
    """Deploy ``model``'s version ``version`` to ``environment``."""

    model = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    version = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    environment = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    endpoint_url = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    config = serializers.DictField(required=False, default=dict)
    activate = serializers.BooleanField(required=False, default=True)
    comment = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)


class PromoteInput(serializers.Serializer):
    """Promote to the next environment; endpoint and config default to the source's."""

    endpoint_url = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
    config = serializers.DictField(required=False, allow_null=True, default=None)
    comment = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)


class RollbackInput(serializers.Serializer):
    """An optional comment recorded with the change."""

    comment = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)


class DeploymentStatusInput(serializers.Serializer):
    """A status report from the deployer."""

    status = serializers.ChoiceField(choices=DeploymentStatus.choices)
    message = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)


class DeploymentListQuery(serializers.Serializer):
    """Filters of the deployment list."""

    team = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    model = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    environment = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    status = serializers.ChoiceField(choices=DeploymentStatus.choices, required=False)


class DeploymentEventsQuery(serializers.Serializer):
    """``?since=<seq>``."""

    since = serializers.IntegerField(required=False, min_value=0, max_value=MAX_ID)


class MonitoringMetricsQuery(serializers.Serializer):
    """``?key=<metric>&since=<seq>``."""

    key = serializers.CharField(required=False, max_length=250)
    since = serializers.IntegerField(required=False, min_value=0, max_value=MAX_ID)


class MonitoringPointInput(serializers.Serializer):
    """One monitoring point (schema only: the service validates values, NaN included)."""

    key = serializers.CharField()
    value = serializers.FloatField(help_text='A number, or "NaN", "Infinity", "-Infinity".')
    timestamp = serializers.IntegerField(required=False, help_text="Milliseconds since the epoch; default now.")


class MonitoringIngestInput(serializers.Serializer):
    """A batch of monitoring points (at most 1000)."""

    metrics = MonitoringPointInput(many=True)


class AlertRuleInput(serializers.Serializer):
    """Alert when mean(metric over window_seconds) <comparison> threshold."""

    metric = serializers.CharField(max_length=250)
    comparison = serializers.ChoiceField(choices=Comparison.choices)
    threshold = serializers.FloatField()
    window_seconds = serializers.IntegerField(required=False, default=300, min_value=1, max_value=MAX_ID)


class AlertRuleUpdateInput(serializers.Serializer):
    """Change a rule's condition or switch it on/off."""

    comparison = serializers.ChoiceField(choices=Comparison.choices, required=False)
    threshold = serializers.FloatField(required=False)
    window_seconds = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    is_enabled = serializers.BooleanField(required=False)


class WebhookCreateInput(serializers.Serializer):
    """A team's webhook: URL and subscribed event types."""

    team = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    name = serializers.CharField(max_length=100)
    url = serializers.CharField(max_length=500)
    event_types = serializers.ListField(child=serializers.CharField(max_length=64), allow_empty=False)
    is_active = serializers.BooleanField(required=False, default=True)


class WebhookUpdateInput(serializers.Serializer):
    """Change a webhook."""

    name = serializers.CharField(max_length=100, required=False)
    url = serializers.CharField(max_length=500, required=False)
    event_types = serializers.ListField(child=serializers.CharField(max_length=64), required=False, allow_empty=False)
    is_active = serializers.BooleanField(required=False)


class DeliveryListQuery(serializers.Serializer):
    """``?status=pending|sending|succeeded|failed``."""

    status = serializers.ChoiceField(choices=["pending", "sending", "succeeded", "failed"], required=False)


class AlertListQuery(serializers.Serializer):
    """``?state=firing|resolved``."""

    state = serializers.ChoiceField(choices=["firing", "resolved"], required=False)


# --------------------------------------------------------------------------- outputs


class ModelOutput(serializers.ModelSerializer):
    """A registered model with its tags and aliases."""

    team_name = serializers.CharField(source="team.name", read_only=True)
    tags = TagMapField()
    aliases = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()

    class Meta:
        model = RegisteredModel
        fields = [
            "id",
            "team",
            "team_name",
            "name",
            "description",
            "last_version",
            "tags",
            "aliases",
            "created_by",
            "created_at",
            "updated_at",
        ]

    def get_aliases(self, obj: RegisteredModel) -> dict[str, int]:
        return {alias.alias: alias.version.version for alias in obj.aliases.all()}

    def get_created_by(self, obj: RegisteredModel) -> str | None:
        return _username(obj.created_by)


class VersionOutput(serializers.ModelSerializer):
    """A model version."""

    model_name = serializers.CharField(source="model.name", read_only=True)
    run_id = serializers.SerializerMethodField()
    tags = TagMapField()
    aliases = serializers.SerializerMethodField()
    created_by = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "model",
            "model_name",
            "version",
            "source",
            "run_id",
            "run_link",
            "description",
            "status",
            "status_message",
            "current_stage",
            "tags",
            "aliases",
            "created_by",
            "created_at",
            "updated_at",
        ]

    def get_run_id(self, obj: ModelVersion) -> str | None:
        return obj.run.run_uuid if obj.run_id else None

    def get_aliases(self, obj: ModelVersion) -> list[str]:
        return [alias.alias for alias in obj.aliases.all()]

    def get_created_by(self, obj: ModelVersion) -> str | None:
        return _username(obj.created_by)


class AliasOutput(serializers.ModelSerializer):
    """An alias and the version number it points at."""

    version = serializers.IntegerField(source="version.version")
    updated_by = serializers.SerializerMethodField()

    class Meta:
        model = Alias
        fields = ["alias", "version", "updated_by", "updated_at"]

    def get_updated_by(self, obj: Alias) -> str | None:
        return _username(obj.updated_by)


class RegistryTagOutput(serializers.Serializer):
    """``{key, value}``."""

    key = serializers.CharField()
    value = serializers.CharField()


class TransitionOutput(serializers.ModelSerializer):
    """One stage transition."""

    user = serializers.SerializerMethodField()

    class Meta:
        model = StageTransition
        fields = ["id", "from_stage", "to_stage", "user", "comment", "created_at"]

    def get_user(self, obj: StageTransition) -> str | None:
        return _username(obj.user)


class ModelSearchOutput(serializers.Serializer):
    """A page of search results with the token of the next page."""

    results = ModelOutput(many=True)
    next_page_token = serializers.CharField(allow_null=True)


class VersionSearchOutput(serializers.Serializer):
    """A page of version search results with the token of the next page."""

    results = VersionOutput(many=True)
    next_page_token = serializers.CharField(allow_null=True)


class EnvironmentOutput(serializers.ModelSerializer):
    """An environment of a team's promotion path."""

    class Meta:
        model = Environment
        fields = ["id", "team", "name", "position", "description", "created_at"]


class DeploymentOutput(serializers.ModelSerializer):
    """A deployment: which version, where, its status, who put it there and when."""

    model_name = serializers.CharField(source="model.name", read_only=True)
    version = serializers.IntegerField(source="version.version", read_only=True)
    version_id = serializers.IntegerField(read_only=True)
    environment_name = serializers.CharField(source="environment.name", read_only=True)
    created_by = serializers.SerializerMethodField()

    class Meta:
        model = Deployment
        fields = [
            "id",
            "team",
            "model",
            "model_name",
            "version",
            "version_id",
            "environment",
            "environment_name",
            "status",
            "origin",
            "source",
            "endpoint_url",
            "config",
            "created_by",
            "created_at",
            "updated_at",
            "went_live_at",
            "retired_at",
            "last_seq",
        ]

    def get_created_by(self, obj: Deployment) -> str | None:
        return _username(obj.created_by)


class DeploymentEventOutput(serializers.ModelSerializer):
    """One deployment event."""

    actor = serializers.SerializerMethodField()

    class Meta:
        model = DeploymentEvent
        fields = ["id", "seq", "kind", "from_status", "to_status", "message", "details", "actor", "created_at"]

    def get_actor(self, obj: DeploymentEvent) -> str | None:
        return _username(obj.actor)


class MonitoringMetricOutput(serializers.ModelSerializer):
    """One monitoring point; a NULL value is NaN."""

    value = serializers.SerializerMethodField()

    class Meta:
        model = MonitoringMetric
        fields = ["id", "key", "value", "timestamp", "seq"]

    def get_value(self, obj: MonitoringMetric) -> float:
        return float("nan") if obj.value is None else obj.value


class MonitoringIngestOutput(serializers.Serializer):
    """What an ingest stored."""

    seq = serializers.IntegerField()
    count = serializers.IntegerField()


class AlertRuleOutput(serializers.ModelSerializer):
    """An alert rule."""

    class Meta:
        model = AlertRule
        fields = ["id", "metric", "comparison", "threshold", "window_seconds", "is_enabled", "created_at"]


class AlertOutput(serializers.ModelSerializer):
    """An alert raised by a rule (and maybe resolved)."""

    metric = serializers.CharField(source="rule.metric", read_only=True)

    class Meta:
        model = Alert
        fields = ["id", "rule", "metric", "state", "value", "resolved_value", "raised_at", "resolved_at"]


class WebhookOutput(serializers.ModelSerializer):
    """A webhook (without its secret)."""

    class Meta:
        model = Webhook
        fields = ["id", "team", "name", "url", "event_types", "is_active", "created_at"]


class WebhookCreatedOutput(WebhookOutput):
    """A new webhook with its signing secret, shown this once."""

    class Meta(WebhookOutput.Meta):
        fields = [*WebhookOutput.Meta.fields, "secret"]


class DeliveryOutput(serializers.ModelSerializer):
    """One delivery attempt."""

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event_id",
            "event_type",
            "attempt",
            "status",
            "scheduled_at",
            "started_at",
            "finished_at",
            "status_code",
            "duration_ms",
            "error",
            "payload",
        ]


STAGE_CHOICES = [stage.value for stage in Stage]
