"""Admin for MLflow 3 logged models and run inputs/outputs (read-mostly: clients write them)."""

from __future__ import annotations

from django.contrib import admin

from experiments.mlflow.models import LoggedModel, LoggedModelParam, LoggedModelTag, RunDatasetInput, RunModelLink


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
