"""Input and output serializers for the native experiments API (small, one per shape)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from experiments.limits import INT64_MAX, INT64_MIN
from experiments.models import Experiment, Run, RunStatus
from experiments.selectors import run_details
from mlplatform.fields import TagMapField
from mlplatform.nonfinite import encode_float


@extend_schema_field(OpenApiTypes.OBJECT)
class KeyValueField(serializers.Field):
    """Tags as ``{key: value}`` or ``[{key, value}]``; items are checked by the services."""

    def to_internal_value(self, data: Any) -> Any:
        """Accept a mapping or a list; anything else is a 400."""
        if not isinstance(data, (dict, list)):
            raise serializers.ValidationError("Expected an object {key: value} or a list of {key, value}.")
        return data

    def to_representation(self, value: Any) -> Any:
        """Unused (input only)."""
        return value


@extend_schema_field({"type": "array", "items": {"type": "object"}})
class ItemListField(serializers.Field):
    """A list of item objects passed through as is: ``log_batch`` validates every item once, with limits.

    DRF's ``ListField(child=DictField())`` would re-validate up to 1000 dicts per batch on the hot path.
    """

    def to_internal_value(self, data: Any) -> Any:
        """Accept a list; anything else is a 400."""
        if not isinstance(data, list):
            raise serializers.ValidationError("Expected a list of objects.")
        return data

    def to_representation(self, value: Any) -> Any:
        """Unused (input only)."""
        return value


class ExperimentCreateInputSerializer(serializers.Serializer):
    """Create an experiment; ``team`` defaults to the caller's personal team."""

    name = serializers.CharField(max_length=500, trim_whitespace=True)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    team = serializers.IntegerField(required=False, allow_null=True, default=None)
    tags = KeyValueField(required=False, default=dict)
    artifact_location = serializers.CharField(required=False, allow_blank=True, max_length=1000, default="")


class ExperimentUpdateInputSerializer(serializers.Serializer):
    """Rename an experiment or change its description."""

    name = serializers.CharField(required=False, max_length=500)
    description = serializers.CharField(required=False, allow_blank=True)


class TagInputSerializer(serializers.Serializer):
    """One tag; limits are checked by the services."""

    key = serializers.CharField(trim_whitespace=False)
    value = serializers.CharField(allow_blank=True, trim_whitespace=False)


class ExperimentOutputSerializer(serializers.ModelSerializer):
    """An experiment with its tags as a mapping."""

    team_id = serializers.IntegerField(read_only=True)
    team_name = serializers.CharField(source="team.name", read_only=True)
    created_by = serializers.CharField(source="created_by.username", default=None, read_only=True)
    tags = TagMapField()

    class Meta:
        model = Experiment
        fields = [
            "id",
            "name",
            "team_id",
            "team_name",
            "description",
            "lifecycle_stage",
            "artifact_location",
            "created_by",
            "created_at",
            "updated_at",
            "tags",
        ]


class RunCreateInputSerializer(serializers.Serializer):
    """Start a run."""

    experiment_id = serializers.IntegerField()
    name = serializers.CharField(required=False, allow_blank=True, allow_null=True, default=None, max_length=250)
    start_time = serializers.IntegerField(required=False, allow_null=True, default=None)
    status = serializers.ChoiceField(choices=RunStatus.choices, default=RunStatus.RUNNING)
    tags = KeyValueField(required=False, default=dict)


class RunUpdateInputSerializer(serializers.Serializer):
    """Change a run's status, end time or name."""

    status = serializers.ChoiceField(choices=RunStatus.choices, required=False)
    end_time = serializers.IntegerField(required=False)
    name = serializers.CharField(required=False, allow_blank=True, max_length=250)


class LogBatchInputSerializer(serializers.Serializer):
    """A batch: lists of metric, param and tag objects, validated item by item by ``log_batch``."""

    metrics = ItemListField(required=False, default=list)
    params = ItemListField(required=False, default=list)
    tags = ItemListField(required=False, default=list)


class RunSearchInputSerializer(serializers.Serializer):
    """Query parameters of the run list."""

    # Bounded: an id past int64 in an IN (...) list would overflow the database driver (a 500).
    experiment_id = serializers.ListField(
        child=serializers.IntegerField(min_value=INT64_MIN, max_value=INT64_MAX), required=False, default=list
    )
    filter = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)
    order_by = serializers.ListField(child=serializers.CharField(max_length=500), required=False, default=list)
    run_view = serializers.ChoiceField(choices=["active", "deleted", "all"], default="active")
    page_size = serializers.IntegerField(min_value=1, max_value=1000, default=100)
    page_token = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)


class HistoryInputSerializer(serializers.Serializer):
    """Query parameters of a metric history read."""

    since_step = serializers.IntegerField(required=False, allow_null=True, default=None)
    max_points = serializers.IntegerField(required=False, allow_null=True, default=None)
    page_size = serializers.IntegerField(required=False, allow_null=True, default=None)
    page_token = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)


class BulkHistoryInputSerializer(serializers.Serializer):
    """Query parameters of the many-runs-and-keys history read."""

    run_id = serializers.ListField(child=serializers.CharField(max_length=32), min_length=1, max_length=100)
    key = serializers.ListField(child=serializers.CharField(max_length=250), min_length=1, max_length=100)
    max_points = serializers.IntegerField(required=False, allow_null=True, default=None)


class RunOutputSerializer(serializers.ModelSerializer):
    """A run with its params, tags and latest metrics (prefetched by the selectors)."""

    run_id = serializers.CharField(source="run_uuid", read_only=True)
    experiment_id = serializers.IntegerField(read_only=True)
    user = serializers.CharField(source="user.username", default=None, read_only=True)
    params = serializers.SerializerMethodField()
    tags = TagMapField()
    metrics = serializers.SerializerMethodField()

    class Meta:
        model = Run
        fields = [
            "run_id",
            "experiment_id",
            "name",
            "user",
            "status",
            "start_time",
            "end_time",
            "lifecycle_stage",
            "artifact_uri",
            "locked",
            "last_seq",
            "params",
            "tags",
            "metrics",
        ]

    def to_representation(self, run: Run) -> dict[str, Any]:
        """The fields above, built directly: through DRF's field objects a page of 100 runs took 5 ms.

        ``tests`` compare it with the field-by-field rendering (``super().to_representation``).
        """
        user = run.user
        return {
            "run_id": run.run_uuid,
            "experiment_id": run.experiment_id,
            "name": run.name,
            "user": user.username if user is not None else None,
            "status": run.status,
            "start_time": run.start_time,
            "end_time": run.end_time,
            "lifecycle_stage": run.lifecycle_stage,
            "artifact_uri": run.artifact_uri,
            "locked": run.locked,
            "last_seq": run.last_seq,
            "params": self.get_params(run),
            "tags": {tag.key: tag.value for tag in run_details(run, "tags")},
            "metrics": self.get_metrics(run),
        }

    def get_params(self, run: Run) -> dict[str, str]:
        """Params as ``{key: value}``."""
        return {param.key: param.value for param in run_details(run, "params")}

    def get_metrics(self, run: Run) -> dict[str, Any]:
        """Latest metrics as ``{key: {value, step, timestamp}}``."""
        return {
            metric.key: {"value": encode_float(metric.float_value), "step": metric.step, "timestamp": metric.timestamp}
            for metric in run_details(run, "latest_metrics")
        }


class ArtifactEntrySerializer(serializers.Serializer):
    """A file or folder in a run's artifacts."""

    path = serializers.CharField()
    is_dir = serializers.BooleanField()
    file_size = serializers.IntegerField(allow_null=True)


class ArtifactListingSerializer(serializers.Serializer):
    """One folder of a run's artifacts: where the run's artifacts live, the folder, and its entries."""

    root_uri = serializers.CharField()
    path = serializers.CharField(allow_blank=True)
    files = ArtifactEntrySerializer(many=True)
