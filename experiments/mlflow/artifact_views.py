"""MLflow's proxied artifact API (``/api/2.0/mlflow-artifacts/...``) and ``/mlflow/artifacts/list``.

A run's ``artifact_uri`` is ``mlflow-artifacts:/<experiment id>/<run id>/artifacts``, so the client
sends paths ``<experiment id>/<run id>/artifacts/<path>``; a logged model's location is
``mlflow-artifacts:/<experiment id>/models/<model id>/artifacts``. Both map onto
``experiments.artifacts`` (same storage, path-safety rules, size limit and permission checks as
the native API). Multipart uploads are answered the way MLflow's own server answers them for
local storage ("not supported"), which makes the client fall back to one streamed PUT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import FileResponse, HttpResponse
from rest_framework.request import Request

from accounts.permissions import Action
from experiments import artifacts
from experiments.mlflow.logged_models import logged_model_artifact_owner
from experiments.mlflow.lookups import run_for
from mlplatform.errors import InvalidInput, NotFound
from mlplatform.mlflow_api import MlflowApiError, endpoint, json_response, request_params

MULTIPART_UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"
PRESIGNED_UNSUPPORTED = "Presigned download is not supported for the current artifact repository"
PRESIGNED_URLS_UNSUPPORTED = "Presigned URLs are not supported for the current artifact repository"


@dataclass(frozen=True)
class Location:
    """Where a proxied artifact path points: the owning run (or logged model) and the path inside it."""

    owner: Any
    path: str


def locate(request: Request, raw_path: str, *, action: Action = Action.READ) -> Location | None:
    """Map ``<experiment id>/<run id>/artifacts/<path>`` (or ``.../models/<model id>/artifacts/...``) to its owner.

    None when the path names no run or model folder (e.g. an experiment root), which lists as empty.
    """
    clean = artifacts.safe_artifact_path(raw_path, allow_root=True)
    parts = clean.split("/") if clean else []
    if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
        owner = logged_model_artifact_owner(request, model_id=parts[2], experiment_id=parts[0])
        return Location(owner, "/".join(parts[4:]))
    if len(parts) >= 3 and parts[2] == "artifacts":
        run = run_for(request, parts[1], action)
        if str(run.experiment_id) != parts[0]:
            raise NotFound("Run not found.")
        return Location(run, "/".join(parts[3:]))
    return None


def _file_location(request: Request, raw_path: str) -> Location:
    location = locate(request, raw_path)
    if location is None or not location.path:
        raise InvalidInput(f"Artifact path {raw_path!r} must look like <experiment id>/<run id>/artifacts/<path>.")
    return location


@endpoint("GET", "PUT", "DELETE")
def artifact(request: Request, artifact_path: str) -> HttpResponse:
    """Download (GET), upload the raw body (PUT, streamed) or delete (DELETE) one artifact."""
    location = _file_location(request, artifact_path)
    if request.method == "PUT":
        stream, size = artifacts.request_upload(request)
        artifacts.artifact_write(
            user=request.user, run=location.owner, path=location.path, stream=stream, size_hint=size
        )
        return json_response({})
    if request.method == "DELETE":
        artifacts.artifact_delete(user=request.user, run=location.owner, path=location.path, request=request)
        return json_response({})
    opened = artifacts.artifact_open(location.owner, location.path)
    response = FileResponse(opened.file, content_type=opened.content_type, as_attachment=True, filename=opened.name)
    response["Content-Length"] = str(opened.size)
    # Artifacts are user content: never let an HTML artifact run script on this origin.
    response["Content-Security-Policy"] = "sandbox"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@endpoint("GET")
def list_proxied_artifacts(request: Request) -> HttpResponse:
    """``?path=<experiment id>/<run id>/artifacts/<folder>``: entries named relative to that folder."""
    location = locate(request, request_params(request).string("path", "") or "")
    if location is None:
        return json_response({"files": []})
    prefix = f"{location.path}/" if location.path else ""
    files = []
    for entry in artifacts.artifact_list(location.owner, location.path):
        item: dict[str, Any] = {"path": entry["path"].removeprefix(prefix), "is_dir": entry["is_dir"]}
        if entry["file_size"] is not None:
            item["file_size"] = entry["file_size"]
        files.append(item)
    return json_response({"files": files})


@endpoint("GET")
def list_run_artifacts(request: Request) -> HttpResponse:
    """``/mlflow/artifacts/list?run_id=&path=``: entries named relative to the run's artifact root."""
    params = request_params(request)
    run = run_for(request, params.required_string("run_id", "run_uuid"))
    files = []
    for entry in artifacts.artifact_list(run, params.string("path", "") or ""):
        item: dict[str, Any] = {"path": entry["path"], "is_dir": entry["is_dir"]}
        if entry["file_size"] is not None:
            item["file_size"] = entry["file_size"]
        files.append(item)
    return json_response({"root_uri": run.artifact_uri, "files": files})


@endpoint("POST")
def multipart_unsupported(request: Request, artifact_path: str) -> HttpResponse:
    """Multipart create/complete/abort: not supported, as MLflow's server says for local storage."""
    raise MlflowApiError(MULTIPART_UNSUPPORTED, error_code="NOT_IMPLEMENTED", status=501)


@endpoint("GET")
def presigned_unsupported(request: Request, artifact_path: str) -> HttpResponse:
    """Presigned downloads: not supported; the client downloads through the proxy instead."""
    raise MlflowApiError(PRESIGNED_UNSUPPORTED, error_code="NOT_IMPLEMENTED", status=501)


@endpoint("POST")
def run_presigned_url_unsupported(request: Request) -> HttpResponse:
    """``artifacts/presigned-upload-url`` and ``presigned-download-url``: not supported (``server-info`` says so)."""
    raise MlflowApiError(PRESIGNED_URLS_UNSUPPORTED, error_code="NOT_IMPLEMENTED", status=501)
