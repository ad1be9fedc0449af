"""MLflow tracking routes, mounted at ``/api/2.0/mlflow/`` and ``/ajax-api/2.0/mlflow/`` (unnamed: the
paths themselves are the public contract, as in MLflow's ``handlers.py``)."""

from django.urls import path

from experiments.mlflow import artifact_views, experiment_views, logged_model_views, run_views

urlpatterns = [
    path("experiments/create", experiment_views.create_experiment),
    path("experiments/get", experiment_views.get_experiment),
    path("experiments/get-by-name", experiment_views.get_experiment_by_name),
    path("experiments/search", experiment_views.search_experiments_view),
    path("experiments/update", experiment_views.update_experiment),
    path("experiments/delete", experiment_views.delete_experiment),
    path("experiments/restore", experiment_views.restore_experiment),
    path("experiments/set-experiment-tag", experiment_views.set_experiment_tag),
    path("experiments/delete-experiment-tag", experiment_views.delete_experiment_tag),
    path("runs/create", run_views.create_run),
    path("runs/update", run_views.update_run),
    path("runs/delete", run_views.delete_run),
    path("runs/restore", run_views.restore_run),
    path("runs/get", run_views.get_run),
    path("runs/search", run_views.search_runs),
    path("runs/log-metric", run_views.log_metric),
    path("runs/log-parameter", run_views.log_param),
    path("runs/set-tag", run_views.set_tag),
    path("runs/delete-tag", run_views.delete_tag),
    path("runs/log-batch", run_views.log_batch),
    path("runs/log-model", run_views.log_model),
    path("runs/log-inputs", logged_model_views.log_inputs),
    path("runs/outputs", logged_model_views.log_outputs),
    path("metrics/get-history", run_views.get_metric_history),
    path("metrics/get-history-bulk-interval", run_views.get_metric_history_bulk_interval),
    path("artifacts/list", artifact_views.list_run_artifacts),
    path("artifacts/presigned-upload-url", artifact_views.run_presigned_url_unsupported),
    path("artifacts/presigned-download-url", artifact_views.run_presigned_url_unsupported),
    path("logged-models", logged_model_views.create_logged_model),
    path("logged-models/search", logged_model_views.search_logged_models),
    path("logged-models/<str:model_id>", logged_model_views.logged_model),
    path("logged-models/<str:model_id>/tags", logged_model_views.set_logged_model_tags),
    path("logged-models/<str:model_id>/tags/<path:tag_key>", logged_model_views.delete_logged_model_tag),
    path("logged-models/<str:model_id>/params", logged_model_views.log_logged_model_params),
    path("logged-models/<str:model_id>/artifacts/directories", logged_model_views.list_logged_model_artifacts),
]
