"""Native API routes for experiments and runs (mounted under /api/v1/)."""

from django.urls import path, register_converter

from experiments.api import artifacts, experiments, metrics, runs


class RunUuidConverter:
    """A run's public id: 32 lower-case hex digits."""

    regex = "[0-9a-f]{32}"

    def to_python(self, value: str) -> str:
        """The id as is."""
        return value

    def to_url(self, value: str) -> str:
        """The id as is."""
        return value


register_converter(RunUuidConverter, "run_uuid")

urlpatterns = [
    path("experiments/", experiments.ExperimentListView.as_view(), name="experiment-list"),
    path("experiments/<int:experiment_id>/", experiments.ExperimentDetailView.as_view(), name="experiment-detail"),
    path(
        "experiments/<int:experiment_id>/restore/",
        experiments.ExperimentRestoreView.as_view(),
        name="experiment-restore",
    ),
    path("experiments/<int:experiment_id>/tags/", experiments.ExperimentTagListView.as_view(), name="experiment-tags"),
    path(
        "experiments/<int:experiment_id>/tags/<path:key>",
        experiments.ExperimentTagDetailView.as_view(),
        name="experiment-tag-detail",
    ),
    path("runs/", runs.RunListView.as_view(), name="run-list"),
    path("runs/metrics/history/", metrics.MetricHistoryBulkView.as_view(), name="metric-history-bulk"),
    path("runs/<run_uuid:run_uuid>/", runs.RunDetailView.as_view(), name="run-detail"),
    path("runs/<run_uuid:run_uuid>/restore/", runs.RunRestoreView.as_view(), name="run-restore"),
    path("runs/<run_uuid:run_uuid>/log-batch/", runs.RunLogBatchView.as_view(), name="run-log-batch"),
    path("runs/<run_uuid:run_uuid>/tags/", runs.RunTagListView.as_view(), name="run-tags"),
    path("runs/<run_uuid:run_uuid>/tags/<path:key>", runs.RunTagDetailView.as_view(), name="run-tag-detail"),
    path("runs/<run_uuid:run_uuid>/events/", runs.RunEventsView.as_view(), name="run-events"),
    path(
        "runs/<run_uuid:run_uuid>/metrics/<path:key>/history/",
        metrics.MetricHistoryView.as_view(),
        name="run-metric-history",
    ),
    path("runs/<run_uuid:run_uuid>/artifacts/", artifacts.ArtifactListView.as_view(), name="run-artifacts"),
    path("runs/<run_uuid:run_uuid>/artifacts/<path:path>", artifacts.ArtifactView.as_view(), name="run-artifact"),
]
