"""``/mlflow/runs/...`` and ``/mlflow/metrics/...``: run lifecycle, logging, search and metric history."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.http import HttpResponse
from rest_framework.request import Request

from experiments import selectors, services
from experiments.limits import NON_FINITE
from experiments.mlflow.lookups import DEFAULT_EXPERIMENT_ID, experiment_for, run_for, run_to_log_to, run_with_details
from experiments.mlflow.render import metric_json, run_info_json, run_json
from experiments.mlflow.selectors import logged_models_for_run, runs_inputs_outputs
from experiments.mlflow.services import run_log_batch
from experiments.models import Run, RunStatus
from mlplatform.errors import InvalidInput
from mlplatform.mlflow_api import RequestParams, endpoint, invalid, json_response, request_params
from mlplatform.nonfinite import encode_float, json_bytes_response

LOGGED_MODELS_TAG = "mlflow.log-model.history"
MAX_RUNS_PER_PAGE = 50_000  # MLflow's SEARCH_MAX_RESULTS_THRESHOLD; longer pages are cut, with a next token
DEFAULT_RUNS_PER_PAGE = 1000
RUN_VIEW_TYPES = {
    "ACTIVE_ONLY": "active",
    "DELETED_ONLY": "deleted",
    "ALL": "all",
    "1": "active",
    "2": "deleted",
    "3": "all",
}
HISTORY_PAGE = selectors.MAX_HISTORY_PAGE


def _number(value: Any) -> Any:
    """A metric value as protobuf JSON allows it: a number, "NaN"/"Infinity"/"-Infinity" or a numeric string."""
    if isinstance(value, str) and value not in NON_FINITE:
        try:
            return float(value)
        except ValueError:
            return value  # the service rejects it with a message naming the field
    return value


def _int64(value: Any) -> Any:
    """An int64 as protobuf JSON allows it: a number or a numeric string."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def metric_items(items: Iterable[Any]) -> list[Any]:
    """MLflow ``Metric`` messages as the service's metric dicts (types normalised, extra fields dropped)."""
    cleaned = []
    for item in items:
        if not isinstance(item, dict):
            cleaned.append(item)
            continue
        if type(item.get("value")) is float and type(item.get("timestamp")) is int and type(item.get("step")) is int:
            cleaned.append(item)  # already the service's types (what the mlflow client sends); extras are ignored
            continue
        metric: dict[str, Any] = {"key": item.get("key")}
        if "value" in item:
            metric["value"] = _number(item["value"])
        metric["timestamp"] = _int64(item.get("timestamp"))
        metric["step"] = _int64(item.get("step"))
        cleaned.append(metric)
    return cleaned


def model_links(request: Request, run: Run, raw_items: list[Any]) -> dict[int, tuple[Any, Any, Any]]:
    """``{index: (logged model, dataset_name, dataset_digest)}`` for the metric items sent with a ``model_id``.

    MLflow 3 links such points to the logged model (``log_metric(..., model_id=...)``, and ``log_model``
    re-sending the run's points); the model must be one of the run's experiment the caller may write.
    """
    wanted = {
        index: item["model_id"]
        for index, item in enumerate(raw_items)
        if isinstance(item, dict) and item.get("model_id") not in (None, "")
    }
    for index, model_id in wanted.items():
        if not isinstance(model_id, str):
            raise invalid(f"metrics[{index}].model_id", model_id)
    if not wanted:
        return {}
    models = logged_models_for_run(user=request.user, run=run, model_ids=wanted.values())
    return {
        index: (models[model_id], raw_items[index].get("dataset_name"), raw_items[index].get("dataset_digest"))
        for index, model_id in wanted.items()
    }


def run_id_of(params: RequestParams) -> str:
    """The run id, accepting the older ``run_uuid`` spelling."""
    return params.required_string("run_id", "run_uuid")


def status_of(params: RequestParams, name: str = "status") -> str | None:
    """A RunStatus by name (or MLflow's enum number)."""
    value = params.raw(name)
    if value is None or value == "":
        return None
    numbers = {
        "1": RunStatus.RUNNING,
        "2": RunStatus.SCHEDULED,
        "3": RunStatus.FINISHED,
        "4": RunStatus.FAILED,
        "5": RunStatus.KILLED,
    }
    status = numbers.get(str(value), value)
    if status not in RunStatus.values or isinstance(value, bool):
        raise invalid(name, value, f"Hint: Use one of {', '.join(RunStatus.values)}.")
    return status


def _full_run(request: Request, run_id: str) -> dict[str, Any]:
    run = run_with_details(request, run_id)
    inputs, outputs = runs_inputs_outputs([run])[run.pk]
    return run_json(run, inputs=inputs, outputs=outputs)


@endpoint("POST")
def create_run(request: Request) -> HttpResponse:
    """Start a run; experiment id "0" (or none) is the caller's Default experiment."""
    params = request_params(request)
    experiment = experiment_for(request, params.string("experiment_id") or DEFAULT_EXPERIMENT_ID)
    run = services.run_create(
        user=request.user,
        experiment=experiment,
        name=params.string("run_name") or None,
        start_time=params.integer("start_time"),
        tags=params.key_value_list("tags"),
    )
    return json_response({"run": _full_run(request, run.run_uuid)})


@endpoint("POST")
def update_run(request: Request) -> HttpResponse:
    """Change a run's status, end time and/or name."""
    params = request_params(request)
    run = run_for(request, run_id_of(params))
    run = services.run_update(
        user=request.user,
        run=run,
        status=status_of(params),
        end_time=params.integer("end_time"),
        name=params.string("run_name") or None,
    )
    return json_response({"run_info": run_info_json(run)})


@endpoint("POST")
def delete_run(request: Request) -> HttpResponse:
    """Soft-delete a run (admin role)."""
    run = run_for(request, run_id_of(request_params(request)))
    services.run_delete(user=request.user, run=run, request=request)
    return json_response({})


@endpoint("POST")
def restore_run(request: Request) -> HttpResponse:
    """Restore a soft-deleted run (admin role)."""
    run = run_for(request, run_id_of(request_params(request)))
    services.run_restore(user=request.user, run=run, request=request)
    return json_response({})


@endpoint("GET")
def get_run(request: Request) -> HttpResponse:
    """A run with its latest metrics, params, tags, inputs and outputs."""
    return json_response({"run": _full_run(request, run_id_of(request_params(request)))})


@endpoint("POST")
def log_metric(request: Request) -> HttpResponse:
    """Log one metric point (linked to a logged model when it names one in ``model_id``)."""
    params = request_params(request)
    run = run_to_log_to(request, run_id_of(params))
    key = params.required_string("key")
    if params.raw("value") is None:
        raise InvalidInput("Missing value for required parameter 'value'.")
    raw = {"key": key, "value": params.raw("value"), **_point_times(params)}
    for name in ("model_id", "dataset_name", "dataset_digest"):
        if params.raw(name) is not None:
            raw[name] = params.raw(name)
    links = model_links(request, run, [raw])
    run_log_batch(user=request.user, run=run, metrics=metric_items([raw]), links=links)
    return json_response({})


def _point_times(params: RequestParams) -> dict[str, Any]:
    return {"timestamp": params.raw("timestamp"), "step": params.raw("step")}


@endpoint("POST")
def log_param(request: Request) -> HttpResponse:
    """Log one immutable param."""
    params = request_params(request)
    run = run_for(request, run_id_of(params))
    services.log_param(user=request.user, run=run, key=params.required_string("key"), value=params.string("value", ""))
    return json_response({})


@endpoint("POST")
def set_tag(request: Request) -> HttpResponse:
    """Set one run tag."""
    params = request_params(request)
    run = run_for(request, run_id_of(params))
    services.set_tag(user=request.user, run=run, key=params.required_string("key"), value=params.string("value", ""))
    return json_response({})


@endpoint("POST")
def delete_tag(request: Request) -> HttpResponse:
    """Delete one run tag."""
    params = request_params(request)
    run = run_for(request, run_id_of(params))
    services.delete_tag(user=request.user, run=run, key=params.required_string("key"))
    return json_response({})


@endpoint("POST")
def log_batch(request: Request) -> HttpResponse:
    """Log metrics, params and tags in one transaction (MLflow's limits apply); ``model_id`` items link to models."""
    params = request_params(request)
    run = run_to_log_to(request, run_id_of(params))
    raw_metrics = params.object_list("metrics")
    run_log_batch(
        user=request.user,
        run=run,
        metrics=metric_items(raw_metrics),
        links=model_links(request, run, raw_metrics),
        params=params.key_value_list("params"),
        tags=params.key_value_list("tags"),
    )
    return json_response({})


@endpoint("POST")
def log_model(request: Request) -> HttpResponse:
    """Record a logged model's metadata in the run's ``mlflow.log-model.history`` tag (MLflow 2 clients)."""
    params = request_params(request)
    run = run_with_details(request, run_id_of(params))
    try:
        model = json.loads(params.required_string("model_json"))
    except ValueError as exc:
        raise InvalidInput(f"model_json is not valid JSON: {exc}.") from exc
    history = next((tag.value for tag in run.tags.all() if tag.key == LOGGED_MODELS_TAG), "[]")
    try:
        previous = json.loads(history)
    except ValueError:
        previous = []
    value = json.dumps([*(previous if isinstance(previous, list) else []), model])
    services.set_tag(user=request.user, run=run, key=LOGGED_MODELS_TAG, value=value)
    return json_response({})


@endpoint("POST")
def search_runs(request: Request) -> HttpResponse:
    """Search runs with MLflow's filter and order_by; pages carry ``next_page_token``."""
    params = request_params(request)
    experiment_ids = params.string_list("experiment_ids")
    experiments = [experiment_for(request, experiment_id) for experiment_id in dict.fromkeys(experiment_ids)]
    max_results = params.integer("max_results", DEFAULT_RUNS_PER_PAGE)
    if max_results is None or not 1 <= max_results <= MAX_RUNS_PER_PAGE:
        raise InvalidInput(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be at most {MAX_RUNS_PER_PAGE}."
        )
    view = RUN_VIEW_TYPES.get(str(params.raw("run_view_type") or "ACTIVE_ONLY").upper())
    if view is None:
        raise invalid("run_view_type", params.raw("run_view_type"), "Hint: Use ACTIVE_ONLY, DELETED_ONLY or ALL.")
    page = selectors.search_runs(
        user=request.user,
        experiment_ids=[experiment.pk for experiment in experiments],
        filter_string=params.string("filter", ""),
        order_by=params.string_list("order_by"),
        run_view=view,
        # A shorter page than asked, with a next token, is a valid MLflow answer; the client keeps paging.
        max_results=min(max_results, selectors.MAX_SEARCH_RESULTS),
        page_token=params.string("page_token") or None,
    )
    io = runs_inputs_outputs(page.runs)
    body: dict[str, Any] = {
        "runs": [run_json(run, inputs=io[run.pk][0], outputs=io[run.pk][1]) for run in page.runs],
    }
    if page.next_page_token:
        body["next_page_token"] = page.next_page_token
    return json_response(body)


@endpoint("GET")
def get_metric_history(request: Request) -> HttpResponse:
    """One metric's full history in step order, paged by ``max_results``/``page_token``."""
    params = request_params(request)
    run = run_for(request, run_id_of(params))
    key = params.required_string("metric_key")
    max_results = params.integer("max_results")
    if max_results is not None and max_results <= 0:
        raise InvalidInput(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be a positive integer."
        )
    points, next_token = selectors.history_points(
        run=run,
        key=key,
        page_size=min(max_results or HISTORY_PAGE, HISTORY_PAGE),
        page_token=params.string("page_token") or None,
    )
    run_id = run.run_uuid
    # Up to 25 000 points per page: plain dicts and orjson, not a helper call and stdlib json per point.
    body: dict[str, Any] = {
        "metrics": [
            {
                "key": key,
                "value": value if value - value == 0 else encode_float(value),
                "timestamp": ts,
                "step": step,
                "run_id": run_id,
            }
            for step, ts, value in points
        ]
    }
    if next_token:
        body["next_page_token"] = next_token
    return json_bytes_response(body)


@endpoint("GET")
def get_metric_history_bulk_interval(request: Request) -> HttpResponse:
    """Several runs' history of one metric, downsampled to ``max_results`` points each (the MLflow UI's charts)."""
    params = request_params(request)
    run_ids = params.string_list("run_ids")
    if not run_ids:
        raise InvalidInput("Missing value for required parameter 'run_ids'.")
    if len(run_ids) > 100:
        raise InvalidInput(
            f"GetMetricHistoryBulkInterval request must specify at most 100 run_ids. Received {len(run_ids)} run_ids."
        )
    key = params.required_string("metric_key")
    max_results = params.integer("max_results", 320)
    if max_results is None or not 1 <= max_results <= 2500:
        raise InvalidInput("max_results must be between 1 and 2500.")
    if params.raw("start_step") is not None or params.raw("end_step") is not None:
        raise InvalidInput("start_step and end_step are not supported by this server; omit them for the whole range.")
    runs = selectors.runs_for_compare(user=request.user, run_uuids=run_ids)
    series = selectors.metric_history_bulk(
        runs=runs, keys=[key], max_points=max(max_results, selectors.MIN_POINTS) if max_results else None
    )
    metrics = []
    for item in series:
        points = item["points"][:max_results]
        metrics.extend(metric_json(key, p["value"], p["timestamp"], p["step"], item["run_id"]) for p in points)
    return json_response({"metrics": metrics})
