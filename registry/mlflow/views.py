"""``/mlflow/registered-models/...`` and ``/mlflow/model-versions/...`` over ``registry.services``/``selectors``.

Models are looked up by name among the caller's teams (``X-Team`` narrows it to one); new models go
to the ``X-Team`` team, else the personal team. Without ``X-Team``, a name that already exists in any
of the caller's teams is RESOURCE_ALREADY_EXISTS (so a name always resolves to one model).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.http import HttpResponse
from rest_framework.request import Request

from experiments.mlflow.lookups import run_for, target_team
from experiments.mlflow.selectors import logged_model_get
from mlplatform.errors import Conflict, InvalidInput
from mlplatform.mlflow_api import RequestParams, endpoint, invalid, json_response, request_params, team_from_header
from registry import selectors, services
from registry.mlflow.render import model_version_json, registered_model_json
from registry.models import ModelVersion, RegisteredModel

DEFAULT_MODELS_PER_PAGE = 100
MAX_MODELS_PER_PAGE = 1000  # MLflow's limit for search-registered-models
DEFAULT_VERSIONS_PER_PAGE = 10_000
LOGGED_MODEL_SOURCE = "models:/m-"
# MLflow 3 clients append this clause to exclude prompts; MLflow's server drops it and excludes models tagged as
# prompts instead (a plain tag != would drop every untagged model). There are no prompts here, so it is dropped.
PROMPT_EXCLUSION = re.compile(r"(\s+AND\s+)?\btags?\.`?mlflow\.prompt\.is_prompt`?\s*!=\s*'true'", re.IGNORECASE)


def search_filter(params: RequestParams) -> str:
    """The ``filter`` parameter without the client's prompt-exclusion clause."""
    text = PROMPT_EXCLUSION.sub("", params.string("filter", "") or "").strip()
    return text[4:].strip() if text.upper().startswith("AND ") else text


def model_for(request: Request, params: RequestParams, field: str = "name") -> RegisteredModel:
    """The registered model named by ``field`` among the caller's teams (or the ``X-Team`` team)."""
    return selectors.registered_model_get(
        user=request.user, name=params.required_string(field), team=team_from_header(request)
    )


def version_number(params: RequestParams) -> int:
    """The ``version`` parameter (MLflow sends it as a string)."""
    raw = params.required_string("version") if isinstance(params.raw("version"), str) else params.raw("version")
    try:
        number = int(raw)
    except (TypeError, ValueError):
        raise invalid("version", raw, "Hint: A version number is required.") from None
    if number < 1:
        raise invalid("version", raw, "Hint: Version numbers start at 1.")
    return number


def version_for(request: Request, params: RequestParams) -> ModelVersion:
    """The version named by ``name`` and ``version``."""
    model = model_for(request, params)
    return selectors.model_version_get(user=request.user, model=model, version=version_number(params))


def _fresh_model(request: Request, model: RegisteredModel) -> dict[str, Any]:
    fresh = selectors.registered_model_by_id(user=request.user, model_id=model.pk)
    latest = selectors.latest_versions(user=request.user, model=fresh)
    return {"registered_model": registered_model_json(fresh, latest)}


def _fresh_version(request: Request, version: ModelVersion) -> dict[str, Any]:
    model = selectors.registered_model_by_id(user=request.user, model_id=version.model_id)
    fresh = selectors.model_version_get(user=request.user, model=model, version=version.version)
    return {"model_version": model_version_json(fresh)}


def _latest_by_model(models: Iterable[RegisteredModel]) -> dict[int, list[ModelVersion]]:
    """Each model's highest version per stage, for a page of models in one query."""
    latest: dict[tuple[int, str], ModelVersion] = {}
    model_ids = [model.pk for model in models]
    for version in selectors.version_queryset().filter(model_id__in=model_ids).order_by("-version"):
        latest.setdefault((version.model_id, version.current_stage), version)
    grouped: dict[int, list[ModelVersion]] = {pk: [] for pk in model_ids}
    for (model_id, _stage), version in latest.items():
        grouped[model_id].append(version)
    return {pk: sorted(versions, key=lambda v: v.version) for pk, versions in grouped.items()}


def _page_size(params: RequestParams, default: int, maximum: int) -> int:
    size = params.integer("max_results", default) or default
    if not 1 <= size <= maximum:
        raise InvalidInput(f"Invalid value {size} for parameter 'max_results' supplied. It must be at most {maximum}.")
    return size


# Registered models ----------------------------------------------------------------------------


@endpoint("POST")
def create_registered_model(request: Request) -> HttpResponse:
    """Register a model name; an existing name among the caller's teams is RESOURCE_ALREADY_EXISTS."""
    params = request_params(request)
    name = params.required_string("name")
    team = team_from_header(request)
    if team is None:
        if selectors.registered_model_list(user=request.user).filter(name=name).exists():
            raise Conflict(f"Registered Model (name={name}) already exists.")
        team = target_team(request)
    model = services.registered_model_create(
        user=request.user,
        team=team,
        name=name,
        description=params.string("description", "") or "",
        tags=params.key_value_list("tags"),
        request=request,
    )
    return json_response(_fresh_model(request, model))


@endpoint("GET")
def get_registered_model(request: Request) -> HttpResponse:
    """One registered model with its latest version per stage."""
    return json_response(_fresh_model(request, model_for(request, request_params(request))))


@endpoint("POST")
def rename_registered_model(request: Request) -> HttpResponse:
    """Rename a registered model."""
    params = request_params(request)
    model = model_for(request, params)
    services.registered_model_rename(
        user=request.user, model=model, new_name=params.required_string("new_name"), request=request
    )
    return json_response(_fresh_model(request, model))


@endpoint("PATCH")
def update_registered_model(request: Request) -> HttpResponse:
    """Change a registered model's description."""
    params = request_params(request)
    model = model_for(request, params)
    services.registered_model_update(user=request.user, model=model, description=params.string("description", ""))
    return json_response(_fresh_model(request, model))


@endpoint("DELETE")
def delete_registered_model(request: Request) -> HttpResponse:
    """Delete a registered model and its versions (admin role)."""
    model = model_for(request, request_params(request))
    services.registered_model_delete(user=request.user, model=model, request=request)
    return json_response({})


@endpoint("GET")
def search_registered_models(request: Request) -> HttpResponse:
    """Registered models the caller may see, filtered (name, tags), ordered and paged."""
    params = request_params(request)
    models, token = selectors.search_registered_models(
        user=request.user,
        filter_string=search_filter(params),
        order_by=params.string_list("order_by"),
        max_results=_page_size(params, DEFAULT_MODELS_PER_PAGE, MAX_MODELS_PER_PAGE),
        page_token=params.string("page_token") or None,
    )
    latest = _latest_by_model(models)
    body: dict[str, Any] = {"registered_models": [registered_model_json(m, latest[m.pk]) for m in models]}
    if token:
        body["next_page_token"] = token
    return json_response(body)


@endpoint("GET", "POST")
def get_latest_versions(request: Request) -> HttpResponse:
    """The highest version in each requested stage (every stage by default)."""
    params = request_params(request)
    model = model_for(request, params)
    versions = selectors.latest_versions(user=request.user, model=model, stages=params.string_list("stages"))
    return json_response({"model_versions": [model_version_json(v) for v in versions]})


@endpoint("POST")
def set_registered_model_tag(request: Request) -> HttpResponse:
    """Set a tag on a registered model."""
    params = request_params(request)
    model = model_for(request, params)
    services.registered_model_set_tag(
        user=request.user, model=model, key=params.required_string("key"), value=params.string("value", "")
    )
    return json_response({})


@endpoint("DELETE")
def delete_registered_model_tag(request: Request) -> HttpResponse:
    """Delete a tag of a registered model."""
    params = request_params(request)
    model = model_for(request, params)
    services.registered_model_delete_tag(user=request.user, model=model, key=params.required_string("key"))
    return json_response({})


@endpoint("GET", "POST", "DELETE")
def alias(request: Request) -> HttpResponse:
    """Get the version an alias points at (GET), set (POST) or delete (DELETE) an alias."""
    params = request_params(request)
    model = model_for(request, params)
    name = params.required_string("alias")
    if request.method == "GET":
        version = selectors.model_version_by_alias(user=request.user, model=model, alias=name)
        return json_response({"model_version": model_version_json(version)})
    if request.method == "DELETE":
        services.alias_delete(user=request.user, model=model, alias=name, request=request)
        return json_response({})
    services.alias_set(user=request.user, model=model, alias=name, version=version_number(params), request=request)
    return json_response({})


# Model versions -------------------------------------------------------------------------------


def _source_run(request: Request, params: RequestParams, source: str) -> Any:
    """The run a version comes from (``run_id``), after checking a logged-model source exists and is visible."""
    if source.startswith(LOGGED_MODEL_SOURCE):
        logged_model_get(user=request.user, model_id=source.removeprefix("models:/").split("/")[0])
    run_id = params.string("run_id")
    return run_for(request, run_id) if run_id else None


@endpoint("POST")
def create_model_version(request: Request) -> HttpResponse:
    """Register the next version of a model from a source (``runs:/``, ``mlflow-artifacts:/``, ``models:/m-...``)."""
    params = request_params(request)
    model = model_for(request, params)
    source = params.required_string("source")
    version = services.model_version_create(
        user=request.user,
        model=model,
        source=source,
        run=_source_run(request, params, source),
        description=params.string("description", "") or "",
        tags=params.key_value_list("tags"),
        run_link=params.string("run_link", "") or "",
    )
    return json_response(_fresh_version(request, version))


@endpoint("GET")
def get_model_version(request: Request) -> HttpResponse:
    """One model version."""
    return json_response({"model_version": model_version_json(version_for(request, request_params(request)))})


@endpoint("PATCH")
def update_model_version(request: Request) -> HttpResponse:
    """Change a version's description."""
    params = request_params(request)
    version = version_for(request, params)
    services.model_version_update(user=request.user, version=version, description=params.string("description", ""))
    return json_response(_fresh_version(request, version))


@endpoint("DELETE")
def delete_model_version(request: Request) -> HttpResponse:
    """Delete a version (admin role); its number is not reused."""
    version = version_for(request, request_params(request))
    services.model_version_delete(user=request.user, version=version, request=request)
    return json_response({})


@endpoint("POST")
def transition_stage(request: Request) -> HttpResponse:
    """Move a version to an MLflow stage, optionally archiving the versions already there."""
    params = request_params(request)
    version = version_for(request, params)
    services.model_version_transition_stage(
        user=request.user,
        version=version,
        stage=params.required_string("stage"),
        archive_existing_versions=params.boolean("archive_existing_versions"),
        comment=params.string("comment", "") or "",
        request=request,
    )
    return json_response(_fresh_version(request, version))


@endpoint("GET")
def search_model_versions(request: Request) -> HttpResponse:
    """Versions the caller may see, filtered (``name``, ``run_id``, tags...), ordered and paged."""
    params = request_params(request)
    versions, token = selectors.search_model_versions(
        user=request.user,
        filter_string=search_filter(params),
        order_by=params.string_list("order_by"),
        max_results=_page_size(params, DEFAULT_VERSIONS_PER_PAGE, selectors.VERSION_SEARCH_MAX),
        page_token=params.string("page_token") or None,
    )
    body: dict[str, Any] = {"model_versions": [model_version_json(version) for version in versions]}
    if token:
        body["next_page_token"] = token
    return json_response(body)


@endpoint("GET")
def get_download_uri(request: Request) -> HttpResponse:
    """Where the version's files are: its source URI, which the client knows how to download."""
    return json_response({"artifact_uri": version_for(request, request_params(request)).source})


@endpoint("POST")
def set_model_version_tag(request: Request) -> HttpResponse:
    """Set a tag on a version."""
    params = request_params(request)
    version = version_for(request, params)
    services.model_version_set_tag(
        user=request.user, version=version, key=params.required_string("key"), value=params.string("value", "")
    )
    return json_response({})


@endpoint("DELETE")
def delete_model_version_tag(request: Request) -> HttpResponse:
    """Delete a tag of a version."""
    params = request_params(request)
    version = version_for(request, params)
    services.model_version_delete_tag(user=request.user, version=version, key=params.required_string("key"))
    return json_response({})
