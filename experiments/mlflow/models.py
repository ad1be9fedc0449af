"""Data only MLflow 3 clients produce: logged models and what runs record as their inputs and outputs.

A logged model (``m-<32 hex>``) belongs to an experiment (and, denormalised, its team) and
optionally to the run that produced it. Its files live where MLflow puts them,
in the artifact storage under ``<experiment id>/models/<model id>/artifacts``, handled by ``experiments.artifacts``.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.db import models

from experiments.models import LifecycleStage


class LoggedModelStatus(models.TextChoices):
    """MLflow's LoggedModelStatus, spelled as its protobuf enum."""

    PENDING = "LOGGED_MODEL_PENDING", "Pending"
    READY = "LOGGED_MODEL_READY", "Ready"
    UPLOAD_FAILED = "LOGGED_MODEL_UPLOAD_FAILED", "Upload failed"


class LoggedModel(models.Model):
    """A model logged with ``mlflow.<flavor>.log_model`` (MLflow 3)."""

    model_id = models.CharField(max_length=40, unique=True, help_text="Public id: m-<32 hex digits>.")
    experiment = models.ForeignKey("experiments.Experiment", on_delete=models.CASCADE, related_name="logged_models")
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=250)
    model_type = models.CharField(max_length=250, blank=True)
    source_run = models.ForeignKey(
        "experiments.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="logged_models"
    )
    status = models.CharField(max_length=32, choices=LoggedModelStatus.choices, default=LoggedModelStatus.PENDING)
    status_message = models.TextField(blank=True)
    lifecycle_stage = models.CharField(max_length=16, choices=LifecycleStage.choices, default=LifecycleStage.ACTIVE)
    artifact_location = models.CharField(max_length=1000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    creation_timestamp = models.BigIntegerField(help_text="Milliseconds since the epoch.")
    last_updated_timestamp = models.BigIntegerField(help_text="Milliseconds since the epoch.")

    class Meta:
        ordering = ["-creation_timestamp", "-id"]
        indexes = [models.Index(fields=["experiment", "name"], name="loggedmodel_exp_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.model_id})"

    # ``experiments.artifacts`` stores a run's files under <experiment id>/<run_uuid>/artifacts and checks
    # ``team_id``, ``lifecycle_stage`` and ``locked``; a logged model answers the same so its files land in
    # MLflow's <experiment id>/models/<model id>/artifacts with the same path rules and permission checks.
    @property
    def run_uuid(self) -> str:
        """The folder name ``experiments.artifacts`` uses below the experiment: ``models/<model id>``."""
        return f"models/{self.model_id}"

    @property
    def locked(self) -> bool:
        """Logged models are never locked against uploads (a finished model is simply not written again)."""
        return False


class LoggedModelTag(models.Model):
    """A settable tag on a logged model."""

    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["model", "key"], name="loggedmodeltag_unique_key")]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:50]}"


class LoggedModelParam(models.Model):
    """An immutable param of a logged model."""

    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="params")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["model", "key"], name="loggedmodelparam_unique_key")]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:50]}"


class RunModelLink(models.Model):
    """A run's model input (``log-inputs``) or output (``runs/outputs``, with the step it was logged at)."""

    class Direction(models.TextChoices):
        INPUT = "input", "Input"
        OUTPUT = "output", "Output"

    run = models.ForeignKey("experiments.Run", on_delete=models.CASCADE, related_name="model_links")
    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="run_links")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    step = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "model", "direction"], name="runmodellink_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id} {self.direction} {self.model_id}"


class RunDatasetInput(models.Model):
    """A dataset a run used (``mlflow.log_input``): MLflow's Dataset fields plus the input's tags."""

    run = models.ForeignKey("experiments.Run", on_delete=models.CASCADE, related_name="dataset_inputs")
    name = models.CharField(max_length=500)
    digest = models.CharField(max_length=36)
    source_type = models.CharField(max_length=36)
    source = models.TextField()
    schema = models.TextField(blank=True)
    profile = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True, help_text="[{key, value}] input tags, e.g. mlflow.data.context.")

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["run", "name", "digest"], name="rundatasetinput_unique")]

    def __str__(self) -> str:
        return f"{self.name}@{self.digest}"


class LoggedModelMetric(models.Model):
    """A metric point a run linked to a logged model (a ``Metric`` sent with a ``model_id``).

    The run keeps its own history; this is MLflow's ``logged_model_metrics`` table, which ``get`` and
    ``search`` of logged models read. One row per distinct point (NaN is ``value=0`` with ``is_nan``, as in
    the run's history); the unique constraint starts with (model, key), the lookups filters and sorts make.
    """

    model = models.ForeignKey(LoggedModel, on_delete=models.CASCADE, related_name="metrics", db_index=False)
    run = models.ForeignKey("experiments.Run", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=250)
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)
    timestamp = models.BigIntegerField(help_text="Milliseconds since the epoch.")
    step = models.BigIntegerField(default=0)
    dataset_name = models.CharField(max_length=500, blank=True)
    dataset_digest = models.CharField(max_length=36, blank=True)

    class Meta:
        ordering = ["key", "step", "timestamp", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "key", "run", "step", "timestamp", "value", "is_nan"],
                name="loggedmodelmetric_unique_point",
            )
        ]

    def __str__(self) -> str:
        return f"{self.key}[{self.step}]={self.float_value}"

    @property
    def float_value(self) -> float:
        """The logged value, NaN included."""
        return math.nan if self.is_nan else self.value
