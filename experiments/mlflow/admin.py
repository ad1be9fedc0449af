"""Admin for MLflow 3 logged models and run inputs/outputs (read-mostly: clients write them)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from experiments.mlflow.models import (
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelTag,
    RunDatasetInput,
    RunModelLink,
)


class LoggedModelTagInline(admin.TabularInline):
    """Tags of a logged model."""

    model = LoggedModelTag
    extra = 0


class LoggedModelParamInline(admin.TabularInline):
    """Params of a logged model (immutable)."""

    model = LoggedModelParam
    extra = 0
    readonly_fields = ("key", "value")
    can_delete = False


@admin.register(LoggedModel)
class LoggedModelAdmin(admin.ModelAdmin):
    """Logged models with their tags and params."""

    list_display = ("model_id", "name", "experiment", "team", "status", "lifecycle_stage", "creation_timestamp")
    list_filter = ("status", "lifecycle_stage", "team")
    search_fields = ("model_id", "name", "experiment__name")
    raw_id_fields = ("experiment", "team", "source_run", "created_by")
    readonly_fields = ("model_id", "artifact_location", "creation_timestamp", "last_updated_timestamp")
    inlines = [LoggedModelTagInline, LoggedModelParamInline]


@admin.register(LoggedModelMetric)
class LoggedModelMetricAdmin(admin.ModelAdmin):
    """Metric points runs linked to logged models (read-only: the run's history is the source)."""

    list_display = ("model", "key", "value", "is_nan", "step", "timestamp", "run", "dataset_name")
    list_filter = ("is_nan",)
    search_fields = ("key", "model__model_id", "model__name", "run__run_uuid", "dataset_name")
    raw_id_fields = ("model", "run")
    list_select_related = ("model", "run")
    readonly_fields = (
        "model",
        "run",
        "key",
        "value",
        "is_nan",
        "timestamp",
        "step",
        "dataset_name",
        "dataset_digest",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Points come from clients (``log_metric``/``log_batch`` with a ``model_id``), not from the admin."""
        return False


@admin.register(RunModelLink)
class RunModelLinkAdmin(admin.ModelAdmin):
    """Which runs used or produced which logged models."""

    list_display = ("run", "direction", "model", "step")
    list_filter = ("direction",)
    raw_id_fields = ("run", "model")


@admin.register(RunDatasetInput)
class RunDatasetInputAdmin(admin.ModelAdmin):
    """Datasets runs recorded as inputs."""

    list_display = ("name", "digest", "source_type", "run")
    search_fields = ("name", "digest", "run__run_uuid")
    raw_id_fields = ("run",)
