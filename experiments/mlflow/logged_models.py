"""Logged models in MLflow's JSON shape, and the lookup the proxied artifact routes use."""

from __future__ import annotations

from typing import Any

from experiments.mlflow.models import LoggedModel, LoggedModelMetric
from experiments.mlflow.render import key_values, metric_json
from experiments.mlflow.selectors import logged_model_get
from mlplatform.errors import NotFound


def logged_model_json(model: LoggedModel) -> dict[str, Any]:
    """A ``LoggedModel`` message (``info`` + ``data``); ``model`` comes from ``with_model_details``."""
    info: dict[str, Any] = {
        "model_id": model.model_id,
        "experiment_id": str(model.experiment_id),
        "name": model.name,
        "creation_timestamp_ms": model.creation_timestamp,
        "last_updated_timestamp_ms": model.last_updated_timestamp,
        "artifact_uri": model.artifact_location,
        "status": model.status,
        "model_type": model.model_type,
        "tags": key_values(model.tags.all()),
    }
    if model.source_run is not None:
        info["source_run_id"] = model.source_run.run_uuid
    if model.status_message:
        info["status_message"] = model.status_message
    metrics = [_metric_json(model, point) for point in model.metrics.all()]
    return {"info": info, "data": {"params": key_values(model.params.all()), "metrics": metrics}}


def _metric_json(model: LoggedModel, point: LoggedModelMetric) -> dict[str, Any]:
    """A ``Metric`` message of a logged model: the run that logged it, the model, the dataset if any."""
    metric = metric_json(point.key, point.float_value, point.timestamp, point.step, point.run.run_uuid)
    metric["model_id"] = model.model_id
    if point.dataset_name:
        metric["dataset_name"] = point.dataset_name
        metric["dataset_digest"] = point.dataset_digest
    return metric


def logged_model_artifact_owner(request: Any, *, model_id: str, experiment_id: str) -> LoggedModel:
    """The logged model whose artifact folder ``<experiment id>/models/<model id>/artifacts`` names."""
    model = logged_model_get(user=request.user, model_id=model_id)
    if str(model.experiment_id) != experiment_id:
        raise NotFound(f"Logged model with ID '{model_id}' not found.")
    return model
