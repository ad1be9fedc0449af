"""``/api/3.0/mlflow/server-info``: what MLflow 3 clients probe before choosing how to move artifacts."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from mlplatform.mlflow_api import json_response


def server_info(request: HttpRequest) -> HttpResponse:
    """Capabilities, public like MLflow's own (no login, nothing secret): no multipart, no workspaces."""
    return json_response(
        {
            "store_type": None,
            "workspaces_enabled": False,
            "trace_archival_enabled": False,
            "multipart_uploads_enabled": False,
            "multipart_downloads_enabled": False,
            "presigned_upload_run_id_supported": False,
            "presigned_upload_model_id_supported": False,
            "features_enabled": {"gateway": False},
        }
    )
