"""The shape of live run events and their after-commit publication.

One message per committed write goes to the run's group (full payload) and a compact one to the
experiment's group. Channel layer ``type`` "run.event" dispatches to a consumer's ``run_event``.
Non-finite metric values travel as the strings "NaN", "Infinity", "-Infinity" so every message is
valid JSON for the browser. Each message also carries its JSON text, encoded once here rather than once per
subscriber.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import orjson

from experiments.limits import MetricPoint
from experiments.models import Run
from mlplatform.events import experiment_group, publish_after_commit, run_group
from mlplatform.nonfinite import encode_float

EVENT_TYPE = "run.event"
EVENT_VERSION = 1
# The channel-layer message's pre-encoded wire form; not part of the event itself.
TEXT_KEY = "text"


def run_state(run: Run) -> dict[str, Any]:
    """The run fields a live view shows in its header."""
    return {
        "status": run.status,
        "name": run.name,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "lifecycle_stage": run.lifecycle_stage,
    }


def group_points(points: Iterable[tuple[str, int, int, float]]) -> dict[str, list[list[Any]]]:
    """``(key, step, timestamp, value)`` tuples as ``{key: [[step, timestamp, value], ...]}``."""
    grouped: dict[str, list[list[Any]]] = {}
    for key, step, timestamp, value in points:
        # ``v - v == 0`` is False exactly for NaN and ±inf: one float op per point instead of a call.
        grouped.setdefault(key, []).append([step, timestamp, value if value - value == 0 else encode_float(value)])
    return grouped


def publish_run_event(
    run: Run,
    *,
    seq: int,
    kind: str,
    metrics: list[MetricPoint] | None = None,
    params: dict[str, str] | None = None,
    tags: dict[str, str | None] | None = None,
    include_run: bool = False,
) -> None:
    """Announce one committed write to the run's and the experiment's subscribers."""
    base: dict[str, Any] = {
        "type": EVENT_TYPE,
        "v": EVENT_VERSION,
        "run_id": run.run_uuid,
        "experiment_id": run.experiment_id,
        "seq": seq,
        "kind": kind,
    }
    full = dict(base)
    compact = dict(base)
    if metrics:
        full["metrics"] = group_points((key, step, timestamp, value) for key, value, timestamp, step in metrics)
        # The experiment view only needs each key's newest point of this batch.
        compact["latest"] = {key: points[-1] for key, points in full["metrics"].items()}
    if params:
        full["params"] = dict(params)
    if tags:
        full["tags"] = dict(tags)
    if include_run:
        full["run"] = compact["run"] = run_state(run)
    publish_after_commit(run_group(run.run_uuid), with_text(full))
    publish_after_commit(experiment_group(run.experiment_id), with_text(compact))


def with_text(event: dict[str, Any]) -> dict[str, Any]:
    """The channel-layer message for ``event``: routing fields plus the event's JSON, encoded once.

    Every subscriber forwards ``text`` as it is, so the layer carries (and each consumer decodes) a small
    message instead of the whole payload, and nothing is re-encoded per subscriber.
    """
    return {
        "type": EVENT_TYPE,
        "run_id": event["run_id"],
        "seq": event["seq"],
        # orjson: compact like separators=(",", ":"), several times faster on a 1000-point batch. Values are
        # already finite or strings (group_points), so nothing depends on its NaN handling.
        TEXT_KEY: orjson.dumps(event).decode(),
    }


def event_of(message: dict[str, Any]) -> dict[str, Any]:
    """The event a channel-layer message carries (decoded from ``text`` when the publisher encoded it)."""
    text = message.get(TEXT_KEY)
    return json.loads(text) if isinstance(text, str) else message
