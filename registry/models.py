"""Registry data: registered models and versions, deployments, monitoring and webhooks.

Every object belongs to a team (``team_id``, denormalised where it saves a join) so
``accounts.permissions`` can check it directly.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

NAME_MAX = 256
KEY_MAX = 250
TAG_VALUE_MAX = 5000
SOURCE_MAX = 500


class Stage(models.TextChoices):
    """MLflow's model version stages."""

    NONE = "None", "None"
    STAGING = "Staging", "Staging"
    PRODUCTION = "Production", "Production"
    ARCHIVED = "Archived", "Archived"


class VersionStatus(models.TextChoices):
    """MLflow's model version registration status."""

    PENDING_REGISTRATION = "PENDING_REGISTRATION", "Pending registration"
    FAILED_REGISTRATION = "FAILED_REGISTRATION", "Failed registration"
    READY = "READY", "Ready"


class RegisteredModel(models.Model):
    """A named model within a team; its versions are numbered 1, 2, 3…"""

    # PROTECT: deleting a team must not silently delete its models (the service answers 409).
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="registered_models")
    name = models.CharField(max_length=NAME_MAX)
    description = models.TextField(blank=True)
    # Highest version number ever handed out; versions are numbered under a row lock from it,
    # and like MLflow a deleted version's number is never reused.
    last_version = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="registry_model_unique_team_name")]
        indexes = [models.Index(fields=["name"], name="registry_model_name")]

    def __str__(self) -> str:
        return self.name


class RegisteredModelTag(models.Model):
    """A key/value tag on a registered model."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=KEY_MAX)
    value = models.TextField(blank=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["model", "key"], name="registry_model_tag_unique_key")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class ModelVersion(models.Model):
    """One version of a registered model, usually logged by a run."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    version = models.PositiveIntegerField()
    source = models.CharField(max_length=SOURCE_MAX)
    run = models.ForeignKey(
        "experiments.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="model_versions"
    )
    run_link = models.CharField(max_length=SOURCE_MAX, blank=True)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=32, choices=VersionStatus.choices, default=VersionStatus.READY)
    status_message = models.TextField(blank=True)
    current_stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.NONE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["model_id", "-version"]
        constraints = [models.UniqueConstraint(fields=["model", "version"], name="registry_version_unique_number")]
        indexes = [models.Index(fields=["model", "current_stage"], name="registry_version_stage")]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version}"


class ModelVersionTag(models.Model):
    """A key/value tag on a model version."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=KEY_MAX)
    value = models.TextField(blank=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["version", "key"], name="registry_version_tag_unique_key")]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class Alias(models.Model):
    """A named pointer (``champion``) from a model to one of its versions; moved by one UPDATE."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    alias = models.CharField(max_length=NAME_MAX)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="aliases")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["alias"]
        verbose_name_plural = "aliases"
        constraints = [models.UniqueConstraint(fields=["model", "alias"], name="registry_alias_unique_name")]

    def __str__(self) -> str:
        return f"{self.model.name}@{self.alias}"


class StageTransition(models.Model):
    """History of a version's stage changes: who, when, from, to, comment."""

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="transitions")
    from_stage = models.CharField(max_length=16, choices=Stage.choices)
    to_stage = models.CharField(max_length=16, choices=Stage.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.version}: {self.from_stage} → {self.to_stage}"


class Environment(models.Model):
    """A deployment target of a team; ``position`` orders the promotion path (staging → production)."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="environments")
    name = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=0)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["team_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="registry_environment_unique_name"),
            models.UniqueConstraint(fields=["team", "position"], name="registry_environment_unique_position"),
        ]

    def __str__(self) -> str:
        return self.name


class DeploymentStatus(models.TextChoices):
    """Lifecycle of a deployment."""

    PENDING = "pending", "Pending"
    LIVE = "live", "Live"
    FAILED = "failed", "Failed"
    RETIRED = "retired", "Retired"


class DeploymentOrigin(models.TextChoices):
    """How a deployment came to be."""

    DEPLOY = "deploy", "Deploy"
    PROMOTE = "promote", "Promote"
    ROLLBACK = "rollback", "Rollback"


class Deployment(models.Model):
    """A model version put in an environment. At most one live per (model, environment), enforced by the DB."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    # PROTECT: a deployment and its events are the release history ("who put it there"); deleting a version
    # or model that was ever deployed is refused (the services answer 409) instead of erasing that history.
    model = models.ForeignKey(RegisteredModel, on_delete=models.PROTECT, related_name="deployments")
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="deployments")
    environment = models.ForeignKey(Environment, on_delete=models.PROTECT, related_name="deployments")
    status = models.CharField(max_length=16, choices=DeploymentStatus.choices, default=DeploymentStatus.PENDING)
    origin = models.CharField(max_length=16, choices=DeploymentOrigin.choices, default=DeploymentOrigin.DEPLOY)
    # The deployment this one was promoted or rolled back from.
    source = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    endpoint_url = models.CharField(max_length=SOURCE_MAX, blank=True)
    config = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    went_live_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    # Bumped by every status event, metric batch and alert, so live clients resume with ?since=.
    last_seq = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "environment"],
                condition=Q(status="live"),
                name="registry_deployment_one_live",
                violation_error_message="This model already has a live deployment in this environment.",
            )
        ]
        indexes = [models.Index(fields=["model", "environment", "status"], name="registry_deployment_lookup")]

    def __str__(self) -> str:
        return f"{self.version} in {self.environment} ({self.status})"


class DeploymentEventKind(models.TextChoices):
    """What happened to a deployment."""

    CREATED = "created", "Created"
    STATUS = "status", "Status changed"
    PROMOTED = "promoted", "Promoted"
    ROLLED_BACK = "rolled_back", "Rolled back"
    ALERT_RAISED = "alert_raised", "Alert raised"
    ALERT_RESOLVED = "alert_resolved", "Alert resolved"


class DeploymentEvent(models.Model):
    """Every change to a deployment, in order (``seq``)."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="events")
    seq = models.BigIntegerField()
    kind = models.CharField(max_length=20, choices=DeploymentEventKind.choices)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    message = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["deployment_id", "seq"]
        constraints = [models.UniqueConstraint(fields=["deployment", "seq"], name="registry_event_unique_seq")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind}"


class MonitoringMetric(models.Model):
    """One monitoring point posted by a deployed service. ``value`` NULL stores NaN (SQLite has no NaN)."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="monitoring_metrics")
    key = models.CharField(max_length=KEY_MAX)
    value = models.FloatField(null=True)
    timestamp = models.BigIntegerField(help_text="Milliseconds since the epoch.")
    seq = models.BigIntegerField()

    class Meta:
        ordering = ["deployment_id", "key", "timestamp"]
        indexes = [
            models.Index(fields=["deployment", "key", "timestamp"], name="registry_monitor_key_time"),
            models.Index(fields=["deployment", "seq"], name="registry_monitor_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.key}={self.value}@{self.timestamp}"


class Comparison(models.TextChoices):
    """How an alert rule compares the windowed mean to its threshold."""

    GT = "gt", ">"
    GTE = "gte", ">="
    LT = "lt", "<"
    LTE = "lte", "<="


class AlertRule(models.Model):
    """Raise an alert when the mean of ``metric`` over the last ``window_seconds`` crosses ``threshold``."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="alert_rules")
    metric = models.CharField(max_length=KEY_MAX)
    comparison = models.CharField(max_length=3, choices=Comparison.choices)
    threshold = models.FloatField()
    window_seconds = models.PositiveIntegerField(default=300)
    is_enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["deployment_id", "id"]

    def __str__(self) -> str:
        return f"mean({self.metric}, {self.window_seconds}s) {self.get_comparison_display()} {self.threshold}"


class AlertState(models.TextChoices):
    """An alert is firing until the rule's condition clears."""

    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"


class Alert(models.Model):
    """One raise (and later resolution) of an alert rule on a deployment."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="alerts")
    state = models.CharField(max_length=10, choices=AlertState.choices, default=AlertState.FIRING)
    value = models.FloatField(help_text="Windowed mean when raised.")
    resolved_value = models.FloatField(null=True, blank=True)
    raised_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule"], condition=Q(state="firing"), name="registry_alert_one_firing_per_rule"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule} ({self.state})"


class WebhookEventType(models.TextChoices):
    """Events a webhook can subscribe to."""

    VERSION_CREATED = "model_version.created", "Model version created"
    STAGE_CHANGED = "model_version.stage_changed", "Model version stage changed"
    ALIAS_CHANGED = "model_version.alias_changed", "Alias changed"
    DEPLOYMENT_CHANGED = "deployment.changed", "Deployment changed"
    MONITORING_ALERT = "monitoring.alert", "Monitoring alert"
    TEST = "webhook.test", "Test delivery"


class Webhook(models.Model):
    """A team's HTTP endpoint receiving signed event notifications."""

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="webhooks")
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=SOURCE_MAX)
    # Needed in clear to sign each delivery; shown once at creation, never again through the API.
    secret = models.CharField(max_length=128)
    event_types = models.JSONField(default=list, help_text="Subscribed event types (list of strings).")
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["team_id", "name", "id"]

    def __str__(self) -> str:
        return f"{self.name} → {self.url}"


class DeliveryStatus(models.TextChoices):
    """One delivery attempt's state."""

    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One attempt to deliver one event to one webhook; a failed attempt schedules the next as a new row."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(default=uuid.uuid4, db_index=True, help_text="Same for every attempt of one event.")
    event_type = models.CharField(max_length=64)
    payload = models.JSONField()
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    scheduled_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["status", "scheduled_at"], name="registry_delivery_due")]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.attempt} → {self.status}"
