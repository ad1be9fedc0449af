"""``/mlflow/logged-models...`` (MLflow 3 ``log_model``) and ``runs/log-inputs`` / ``runs/outputs``."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from rest_framework.request import Request

from accounts.permissions import Action
from experiments import artifacts, search
from experiments.mlflow import services
from experiments.mlflow.logged_models import logged_model_json
from experiments.mlflow.lookups import experiment_for, run_for
from experiments.mlflow.models import LoggedModelStatus
from experiments.mlflow.selectors import ModelOrder, logged_model_get, logged_models_search
from mlplatform.errors import InvalidInput
from mlplatform.mlflow_api import endpoint, invalid, json_response, missing, request_params

STATUS_NUMBERS = {"1": LoggedModelStatus.PENDING, "2": LoggedModelStatus.READY, "3": LoggedModelStatus.UPLOAD_FAILED}
DEFAULT_MODELS_PER_PAGE = 100
MAX_MODELS_PER_PAGE = 1000


def _model(request: Request, model_id: str, action: Action = Action.READ) -> Any:
    return logged_model_get(user=request.user, model_id=model_id, action=action)


def _fresh(request: Request, model_id: str) -> dict[str, Any]:
    return {"model": logged_model_json(logged_model_get(user=request.user, model_id=model_id))}


@endpoint("POST")
def create_logged_model(request: Request) -> HttpResponse:
    """Create a PENDING logged model in an experiment, optionally linked to its source run."""
    params = request_params(request)
    experiment = experiment_for(request, params.required_string("experiment_id"))
    source_run_id = params.string("source_run_id")
    model = services.logged_model_create(
        user=request.user,
        experiment=experiment,
        name=params.string("name") or None,
        model_type=params.string("model_type", "") or "",
        source_run=run_for(request, source_run_id) if source_run_id else None,
        params=params.key_value_list("params"),
        tags=params.key_value_list("tags"),
    )
    return json_response(_fresh(request, model.model_id))


@endpoint("GET", "PATCH", "DELETE")
def logged_model(request: Request, model_id: str) -> HttpResponse:
    """Get (GET, ``allow_deleted``), finalize with a status (PATCH) or soft-delete (DELETE) a logged model."""
    params = request_params(request)
    if request.method == "GET":
        model = logged_model_get(user=request.user, model_id=model_id, allow_deleted=params.boolean("allow_deleted"))
        return json_response({"model": logged_model_json(model)})
    model = _model(request, model_id)
    if request.method == "DELETE":
        services.logged_model_delete(user=request.user, model=model, request=request)
        return json_response({})
    raw = params.raw("status")
    if raw is None:
        raise missing("status")
    status = STATUS_NUMBERS.get(str(raw), raw)
    if status not in LoggedModelStatus.values:
        raise invalid("status", raw, f"Hint: Use one of {', '.join(LoggedModelStatus.values)}.")
    services.logged_model_finalize(user=request.user, model=model, status=status)
    return json_response(_fresh(request, model_id))


@endpoint("PATCH")
def set_logged_model_tags(request: Request, model_id: str) -> HttpResponse:
    """Set tags on a logged model."""
    params = request_params(request)
    model = _model(request, model_id)
    services.logged_model_set_tags(user=request.user, model=model, tags=params.key_value_list("tags"))
    return json_response(_fresh(request, model_id))


@endpoint("DELETE")
def delete_logged_model_tag(request: Request, model_id: str, tag_key: str) -> HttpResponse:
    """Delete one tag of a logged model."""
    model = _model(request, model_id)
    services.logged_model_delete_tag(user=request.user, model=model, key=tag_key)
    return json_response({})


@endpoint("POST")
def log_logged_model_params(request: Request, model_id: str) -> HttpResponse:
    """Add params to a logged model (the client sends them in batches of 100)."""
    params = request_params(request)
    model = _model(request, model_id)
    services.logged_model_log_params(user=request.user, model=model, params=params.key_value_list("params"))
    return json_response({})


@endpoint("GET")
def list_logged_model_artifacts(request: Request, model_id: str) -> HttpResponse:
    """The files of a logged model, relative to its artifact root."""
    model = _model(request, model_id)
    path = request_params(request).string("artifact_directory_path", "") or ""
    files = []
    for entry in artifacts.artifact_list(model, path):
        item: dict[str, Any] = {"path": entry["path"], "is_dir": entry["is_dir"]}
        if entry["file_size"] is not None:
            item["file_size"] = entry["file_size"]
        files.append(item)
    return json_response({"root_uri": model.artifact_location, "files": files})


def _order_by(items: list[Any]) -> list[ModelOrder]:
    order = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("field_name"), str):
            raise invalid(f"order_by[{index}]", item, "Hint: Use {'field_name': ..., 'ascending': true|false}.")
        ascending = item.get("ascending", True)
        if not isinstance(ascending, bool):
            raise invalid(f"order_by[{index}].ascending", ascending)
        datasets = {name: item.get(name) for name in ("dataset_name", "dataset_digest")}
        for name, value in datasets.items():
            if value is not None and not isinstance(value, str):
                raise invalid(f"order_by[{index}].{name}", value)
        order.append(ModelOrder(item["field_name"], ascending, **datasets))
    return order


@endpoint("POST")
def search_logged_models(request: Request) -> HttpResponse:
    """Logged models of some experiments, filtered (attributes, tags, params, metrics), ordered and paged."""
    params = request_params(request)
    experiment_ids = params.string_list("experiment_ids")
    if not experiment_ids:
        raise missing("experiment_ids")
    experiments = [experiment_for(request, experiment_id) for experiment_id in dict.fromkeys(experiment_ids)]
    max_results = params.integer("max_results") or DEFAULT_MODELS_PER_PAGE
    if not 1 <= max_results <= MAX_MODELS_PER_PAGE:
        raise InvalidInput(f"max_results must be between 1 and {MAX_MODELS_PER_PAGE}.")
    queryset = logged_models_search(
        user=request.user,
        experiment_ids=[e.pk for e in experiments],
        filter_string=params.string("filter"),
        order_by=_order_by(params.object_list("order_by")),
    )
    page, next_token = search.page(queryset, page_token=params.string("page_token"), max_results=max_results)
    body: dict[str, Any] = {"models": [logged_model_json(model) for model in page]}
    if next_token:
        body["next_page_token"] = next_token
    return json_response(body)


def _model_ids(items: list[Any], name: str) -> list[tuple[str, Any]]:
    pairs = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("model_id"), str) or not item["model_id"]:
            raise invalid(f"{name}[{index}]", item, "Hint: An object with a 'model_id' is required.")
        pairs.append((item["model_id"], item.get("step", 0)))
    return pairs


@endpoint("POST")
def log_inputs(request: Request) -> HttpResponse:
    """Record the datasets and logged models a run used."""
    params = request_params(request)
    run = run_for(request, params.required_string("run_id"))
    models = [_model(request, model_id) for model_id, _ in _model_ids(params.object_list("models"), "models")]
    services.run_log_inputs(user=request.user, run=run, datasets=params.object_list("datasets"), models=models)
    return json_response({})


@endpoint("POST")
def log_outputs(request: Request) -> HttpResponse:
    """Record the logged models a run produced (each at a step)."""
    params = request_params(request)
    run = run_for(request, params.required_string("run_id"))
    items = params.object_list("models")
    if not items:
        raise missing("models")
    pairs = []
    for model_id, step in _model_ids(items, "models"):
        if isinstance(step, str) and step.lstrip("-").isdigit():
            step = int(step)
        pairs.append((_model(request, model_id), step if step is not None else 0))
    services.run_log_outputs(user=request.user, run=run, models=pairs)
    return json_response({})
