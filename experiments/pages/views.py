"""Experiment pages: experiment list, runs table, run detail with live charts, artifacts, compare.

Views only parse the request, call selectors, and shape values for the templates; charts get
their data through ``json_script`` (no inline script), and live updates come over the WebSockets.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode

from experiments import artifacts, selectors
from experiments.models import LifecycleStage, Run, RunStatus
from experiments.pages import selectors as page_selectors
from experiments.pages.context import current_team_id
from experiments.pages.errors import page_errors
from mlplatform.errors import InvalidInput, NotFound
from mlplatform.nonfinite import encode_float

EXPERIMENTS_PER_PAGE = 50
CHART_MAX_POINTS = 1000
COMPARE_MAX_POINTS = 500
MAX_COMPARE_RUNS = 10
DEFAULT_VISIBLE_METRICS = 8
DEFAULT_VISIBLE_PARAMS = 5


def format_value(value: Any) -> str:
    """A metric value for a table cell: 5 significant digits, NaN/±inf spelled out."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.5g}" if math.isfinite(value) else str(encode_float(value))
    return str(value)


def format_duration(run: Run) -> str:
    """How long the run took (or has been running)."""
    end = run.end_time if run.end_time is not None else (int(time.time() * 1000) if run.status == "RUNNING" else None)
    if end is None or end < run.start_time:
        return ""
    seconds = (end - run.start_time) // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def iso_ms(ms: int | None) -> str:
    """Milliseconds since the epoch as an ISO-8601 UTC string (for ``<time datetime>``)."""
    if ms is None:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def human_ms(ms: int | None) -> str:
    """Milliseconds since the epoch as readable UTC text."""
    if ms is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


# Experiments list ------------------------------------------------------------------------------


@login_required
@page_errors
def experiment_list(request: HttpRequest) -> HttpResponse:
    """Experiments of the user's teams (or the chosen team), with run counts and last activity."""
    query = request.GET.get("q", "").strip()[:200]
    experiments = page_selectors.experiments_for_list(user=request.user, team_id=current_team_id(request), query=query)
    page = Paginator(experiments, EXPERIMENTS_PER_PAGE).get_page(request.GET.get("page"))
    for experiment in page.object_list:
        experiment.last_activity_iso = iso_ms(experiment.last_run_start) or experiment.updated_at.isoformat()
    return render(
        request,
        "experiments/experiment_list.html",
        {"nav_section": "experiments", "page": page, "query": query},
    )


# Runs table ------------------------------------------------------------------------------------


@dataclass
class TableColumn:
    """A column of the runs table as the template draws it."""

    name: str
    entity: str
    key: str
    visible_by_default: bool
    numeric: bool
    sort_link: str = ""


def _table_columns(found: dict[str, list[page_selectors.Column]]) -> list[TableColumn]:
    columns = []
    for entity, limit in (("metrics", DEFAULT_VISIBLE_METRICS), ("params", DEFAULT_VISIBLE_PARAMS), ("tags", 0)):
        for index, column in enumerate(found[entity]):
            columns.append(TableColumn(column.name, entity, column.key, index < limit, entity == "metrics"))
    return columns


def _query_string(**params: Any) -> str:
    return "?" + urlencode({key: value for key, value in params.items() if value})


@login_required
@page_errors
def experiment_runs(request: HttpRequest, experiment_id: int) -> HttpResponse:
    """The runs table: chosen columns, sort by any column, the API's filter language, keyset paging."""
    experiment = selectors.experiment_get(user=request.user, experiment_id=experiment_id)
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise NotFound("Experiment not found (it was deleted).")
    filter_string = request.GET.get("filter", "")[:5000]
    sort_raw = request.GET.get("sort", "")
    page_token = request.GET.get("page") or None
    filter_error: dict[str, Any] | None = None
    page = None
    try:
        sort = page_selectors.parse_sort(sort_raw)
    except InvalidInput as exc:
        filter_error = {"message": exc.message}
        sort = page_selectors.Sort()
    if filter_error is None:
        try:
            page = page_selectors.runs_page(
                user=request.user, experiment=experiment, filter_string=filter_string, sort=sort, page_token=page_token
            )
        except InvalidInput as exc:
            column = exc.details.get("column") if isinstance(exc.details, dict) else None
            filter_error = {"message": exc.message, "column": column}
            if isinstance(column, int) and column >= 1:
                filter_error["pointer"] = " " * (column - 1) + "^"
    found = page_selectors.run_columns(experiment=experiment)
    columns = _table_columns(found)
    rows = []
    if page is not None:
        for run in page.runs:
            metrics = page.metrics[run.id]
            params = page.params[run.id]
            tags = page.tags[run.id]
            cells = []
            for column in columns:
                if column.entity == "metrics":
                    metric = metrics.get(column.key)
                    text = format_value(metric.float_value) if metric is not None else ""
                    title = f"step {metric.step}" if metric is not None else ""
                else:
                    text = (params if column.entity == "params" else tags).get(column.key, "")
                    title = text if len(text) > 40 else ""
                    text = text if len(text) <= 40 else text[:39] + "…"
                cells.append({"column": column, "text": text, "title": title})
            rows.append(
                {
                    "run": run,
                    "cells": cells,
                    "duration": format_duration(run),
                    "start_iso": iso_ms(run.start_time),
                    "start_human": human_ms(run.start_time),
                }
            )
    sort_links = {}
    for name in ["run_name", "status", "start_time", *[column.name for column in columns]]:
        descending_first = name == "start_time" or name.startswith("metrics.")
        if sort.column == name:
            next_sort = name if not sort.ascending else f"-{name}"
        else:
            next_sort = f"-{name}" if descending_first else name
        sort_links[name] = _query_string(filter=filter_string, sort=next_sort)
    for column in columns:
        column.sort_link = sort_links[column.name]
    current_sort = ("" if sort.ascending else "-") + sort.column
    live = {
        "experiment_id": experiment.pk,
        "ws_path": f"/ws/experiments/{experiment.pk}/",
        "first_page_default_sort": page_token is None and not filter_string and sort == page_selectors.Sort(),
        "run_url_template": reverse("pages:run_detail", args=["RUN_UUID"]),
        "columns": [column.name for column in columns],
    }
    return render(
        request,
        "experiments/runs_table.html",
        {
            "nav_section": "experiments",
            "experiment": experiment,
            "columns": columns,
            "rows": rows,
            "page": page,
            "filter_string": filter_string,
            "filter_error": filter_error,
            "sort": sort,
            "current_sort": current_sort,
            "sort_links": sort_links,
            "next_link": _query_string(filter=filter_string, sort=sort_raw, page=page.next_token)
            if page and page.next_token
            else None,
            "first_link": _query_string(filter=filter_string, sort=sort_raw) if page_token else None,
            "run_count": page_selectors.active_run_count(experiment=experiment),
            "live": live,
        },
    )


# Run detail ------------------------------------------------------------------------------------


def _series_json(points: list[dict[str, Any]]) -> list[list[Any]]:
    """History points as compact ``[step, timestamp, value]`` triples, non-finite values as strings."""
    return [[point["step"], point["timestamp"], encode_float(point["value"])] for point in points]


@login_required
@page_errors
def run_detail(request: HttpRequest, run_uuid: str) -> HttpResponse:
    """A run: status, params, tags, one live chart per metric, artifacts."""
    run = selectors.run_detail(user=request.user, run_uuid=run_uuid)
    last_seq = run.last_seq
    keys = [metric.key for metric in run.latest_metrics.all()]
    series = {}
    for key in keys:
        history = selectors.metric_history(run=run, key=key, max_points=CHART_MAX_POINTS)
        series[key] = _series_json(history["points"])
    chart_data = {
        "run_id": run.run_uuid,
        "status": run.status,
        "start_time": run.start_time,
        "since": last_seq,
        "live": run.status in (RunStatus.RUNNING, RunStatus.SCHEDULED),
        "ws_path": f"/ws/runs/{run.run_uuid}/",
        "series": series,
    }
    return render(
        request,
        "experiments/run_detail.html",
        {
            "nav_section": "experiments",
            "run": run,
            "experiment": run.experiment,
            "params": list(run.params.all()),
            "tags": [tag for tag in run.tags.all() if not tag.key.startswith("mlflow.")],
            "system_tags": [tag for tag in run.tags.all() if tag.key.startswith("mlflow.")],
            "latest_metrics": [
                {"metric": metric, "text": format_value(metric.float_value)} for metric in run.latest_metrics.all()
            ],
            "duration": format_duration(run),
            "start_human": human_ms(run.start_time),
            "end_human": human_ms(run.end_time),
            "chart_data": chart_data,
            "is_deleted": run.lifecycle_stage != LifecycleStage.ACTIVE,
            "artifacts": _artifact_entries(run, ""),
        },
    )


# Artifacts -------------------------------------------------------------------------------------

PREVIEW_BYTES = 64 * 1024
# Shown inline in the browser; everything else downloads (an uploaded HTML or SVG file must never run here).
INLINE_IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


def _artifact_entries(run: Run, path: str) -> list[dict[str, Any]]:
    entries = artifacts.artifact_list(run, path)
    for entry in entries:
        entry["name"] = entry["path"].rsplit("/", 1)[-1]
    return entries


def _breadcrumbs(path: str) -> list[dict[str, str]]:
    parts = [part for part in path.split("/") if part]
    return [{"name": part, "path": "/".join(parts[: index + 1])} for index, part in enumerate(parts)]


@login_required
@page_errors
def run_artifacts(request: HttpRequest, run_uuid: str) -> HttpResponse:
    """Browse a run's artifact folders (``?path=``) and preview one file (``?file=``): text or image."""
    run = selectors.run_get(user=request.user, run_uuid=run_uuid)
    file_path = request.GET.get("file")
    context: dict[str, Any] = {"nav_section": "experiments", "run": run, "experiment": run.experiment}
    if file_path is not None:
        opened = artifacts.artifact_open(run, file_path)
        clean = artifacts.safe_artifact_path(file_path)
        with opened.file:
            head = opened.file.read(PREVIEW_BYTES)
        preview: dict[str, Any] = {"path": clean, "size": opened.size, "content_type": opened.content_type}
        if opened.content_type in INLINE_IMAGE_TYPES:
            preview["kind"] = "image"
        elif b"\x00" not in head:
            preview["kind"] = "text"
            preview["text"] = head.decode("utf-8", errors="replace")
            preview["truncated"] = opened.size > PREVIEW_BYTES
        else:
            preview["kind"] = "binary"
        context.update(preview=preview, crumbs=_breadcrumbs(clean.rsplit("/", 1)[0] if "/" in clean else ""))
        return render(request, "experiments/artifact_preview.html", context)
    path = artifacts.safe_artifact_path(request.GET.get("path", ""), allow_root=True)
    context.update(path=path, entries=_artifact_entries(run, path), crumbs=_breadcrumbs(path))
    return render(request, "experiments/artifacts.html", context)


@login_required
@page_errors
def run_artifact_raw(request: HttpRequest, run_uuid: str, path: str) -> FileResponse:
    """Stream one artifact: images inline (for previews), everything else as a download."""
    run = selectors.run_get(user=request.user, run_uuid=run_uuid)
    opened = artifacts.artifact_open(run, path)
    inline = opened.content_type in INLINE_IMAGE_TYPES and request.GET.get("download") is None
    response = FileResponse(
        opened.file, as_attachment=not inline, filename=opened.name, content_type=opened.content_type
    )
    response["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src 'self'"
    return response


# Compare ---------------------------------------------------------------------------------------


@login_required
@page_errors
def compare_runs(request: HttpRequest) -> HttpResponse:
    """Compare 2 to N runs: overlaid curves per metric and a params/metrics table highlighting differences."""
    run_uuids = [value for raw in request.GET.getlist("runs") for value in raw.split(",") if value.strip()]
    run_uuids = list(dict.fromkeys(value.strip() for value in run_uuids))
    if len(run_uuids) > MAX_COMPARE_RUNS:
        run_uuids = run_uuids[:MAX_COMPARE_RUNS]
    context: dict[str, Any] = {"nav_section": "experiments", "runs": [], "too_few": len(run_uuids) < 2}
    if context["too_few"]:
        return render(request, "experiments/compare.html", context)
    runs = selectors.runs_for_compare(user=request.user, run_uuids=run_uuids)
    values = page_selectors.run_values(run_ids=[run.id for run in runs])
    metric_keys = sorted({key for run in runs for key in values["metrics"][run.id]})
    param_keys = sorted({key for run in runs for key in values["params"][run.id]})

    def diff_rows(keys: list[str], cell: Any) -> list[dict[str, Any]]:
        rows = []
        for key in keys:
            cells = [cell(run, key) for run in runs]
            rows.append({"key": key, "cells": cells, "differs": len(set(cells)) > 1})
        return rows

    def metric_cell(run: Run, key: str) -> str:
        metric = values["metrics"][run.id].get(key)
        return format_value(metric.float_value) if metric is not None else "—"

    def param_cell(run: Run, key: str) -> str:
        return values["params"][run.id].get(key, "—")

    chart_keys = metric_keys[: max(1, selectors.MAX_BULK_SERIES // len(runs))]
    histories = selectors.metric_history_bulk(runs=runs, keys=chart_keys, max_points=COMPARE_MAX_POINTS)
    series: dict[str, dict[str, list[list[Any]]]] = {}
    for item in histories:
        series.setdefault(item["key"], {})[item["run_id"]] = _series_json(item["points"])
    context.update(
        {
            "runs": runs,
            "experiments": {run.experiment_id: run.experiment for run in runs},
            "param_rows": diff_rows(param_keys, param_cell),
            "metric_rows": diff_rows(metric_keys, metric_cell),
            "chart_data": {
                "runs": [{"id": run.run_uuid, "name": run.name or run.run_uuid[:8]} for run in runs],
                "series": series,
                "start_times": {run.run_uuid: run.start_time for run in runs},
            },
        }
    )
    return render(request, "experiments/compare.html", context)
