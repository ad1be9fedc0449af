"""MLflow's proxied artifact routes, mounted at ``/api/2.0/mlflow-artifacts/`` (and the ajax alias)."""

from django.urls import path

from experiments.mlflow import artifact_views

urlpatterns = [
    path("artifacts", artifact_views.list_proxied_artifacts),
    path("artifacts/", artifact_views.list_proxied_artifacts),
    path("artifacts/<path:artifact_path>", artifact_views.artifact),
    path("mpu/create/<path:artifact_path>", artifact_views.multipart_unsupported),
    path("mpu/complete/<path:artifact_path>", artifact_views.multipart_unsupported),
    path("mpu/abort/<path:artifact_path>", artifact_views.multipart_unsupported),
    path("presigned/<path:artifact_path>", artifact_views.presigned_unsupported),
]
