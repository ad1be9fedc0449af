"""The ``/api/3.0/mlflow/`` routes MLflow 3 clients call in the tracking and model flows."""

from django.urls import path

from experiments.mlflow import run_views, server_info

urlpatterns = [
    path("server-info", server_info.server_info),
    path("metrics/get-history", run_views.get_metric_history),
]
