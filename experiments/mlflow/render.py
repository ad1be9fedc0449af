"""Experiments, runs and metrics in MLflow's JSON shapes (``mlflow.protos.service_pb2``).

Ids are strings (experiment ids are decimal strings, run ids 32 hex digits), times are
milliseconds since the epoch, params and tags are ``[{key, value}]`` and non-finite metric values
are the strings "NaN", "Infinity" and "-Infinity", exactly as MLflow's protobuf JSON renders them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from experiments.models import Experiment, Run
from experiments.selectors import run_details
from mlplatform.nonfinite import encode_float

NOTE_TAG = "mlflow.note.content"


def ms(moment: datetime | None) -> int | None:
    """A datetime as milliseconds since the epoch."""
    return None if moment is None else int(moment.timestamp() * 1000)


def key_values(items: Iterable[Any]) -> list[dict[str, str]]:
    """Tag/param rows as ``[{key, value}]``."""
    return [{"key": item.key, "value": item.value} for item in items]


def experiment_json(experiment: Experiment) -> dict[str, Any]:
    """An ``Experiment`` message; the description shows as MLflow's ``mlflow.note.content`` tag."""
    tags = key_values(experiment.tags.all())
    if experiment.description and not any(tag["key"] == NOTE_TAG for tag in tags):
        tags.append({"key": NOTE_TAG, "value": experiment.description})
    return {
        "experiment_id": str(experiment.pk),
        "name": experiment.name,
        "artifact_location": experiment.artifact_location,
        "lifecycle_stage": experiment.lifecycle_stage,
        "last_update_time": ms(experiment.updated_at),
        "creation_time": ms(experiment.created_at),
        "tags": tags,
    }


def run_info_json(run: Run) -> dict[str, Any]:
    """A ``RunInfo`` message (``run_uuid`` repeats ``run_id`` for older clients)."""
    info: dict[str, Any] = {
        "run_id": run.run_uuid,
        "run_uuid": run.run_uuid,
        "run_name": run.name,
        "experiment_id": str(run.experiment_id),
        "user_id": run.user.get_username() if run.user_id and run.user else "",
        "status": run.status,
        "start_time": run.start_time,
        "artifact_uri": run.artifact_uri,
        "lifecycle_stage": run.lifecycle_stage,
    }
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def metric_json(key: str, value: float, timestamp: int, step: int, run_id: str | None = None) -> dict[str, Any]:
    """A ``Metric`` message."""
    metric: dict[str, Any] = {"key": key, "value": encode_float(value), "timestamp": timestamp, "step": step}
    if run_id is not None:
        metric["run_id"] = run_id
    return metric


def run_json(
    run: Run, *, inputs: dict[str, Any] | None = None, outputs: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A ``Run`` message; ``run`` must come from ``with_run_details`` (params, tags, latest metrics prefetched)."""
    return {
        "info": run_info_json(run),
        "data": {
            "metrics": [
                metric_json(m.key, m.float_value, m.timestamp, m.step) for m in run_details(run, "latest_metrics")
            ],
            "params": key_values(run_details(run, "params")),
            "tags": key_values(run_details(run, "tags")),
        },
        "inputs": inputs or {},
        "outputs": outputs or {},
    }
