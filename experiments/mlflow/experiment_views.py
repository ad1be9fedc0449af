"""``/mlflow/experiments/...``: create, get, get-by-name, search, update, delete, restore, tags."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from rest_framework.request import Request

from experiments import search, selectors, services
from experiments.mlflow import filters
from experiments.mlflow.lookups import experiment_by_name, experiment_for, target_team
from experiments.mlflow.render import experiment_json
from mlplatform.errors import InvalidInput, NotFound
from mlplatform.mlflow_api import endpoint, invalid, json_response, request_params, team_named

TEAM_TAG = "mlplatform.team"
MAX_EXPERIMENTS_PER_PAGE = 50_000  # MLflow's SEARCH_MAX_RESULTS_THRESHOLD
DEFAULT_EXPERIMENTS_PER_PAGE = 1000
VIEW_TYPES = {
    "ACTIVE_ONLY": "active",
    "DELETED_ONLY": "deleted",
    "ALL": "all",
    "1": "active",
    "2": "deleted",
    "3": "all",
}


def view_type(params: Any, name: str) -> str:
    """MLflow's ViewType (name or number) as a selector view; ACTIVE_ONLY when absent."""
    value = params.raw(name)
    if value is None or value == "":
        return "active"
    view = VIEW_TYPES.get(str(value).upper())
    if view is None or isinstance(value, bool):
        raise invalid(name, value, "Hint: Use ACTIVE_ONLY, DELETED_ONLY or ALL.")
    return view


@endpoint("POST")
def create_experiment(request: Request) -> HttpResponse:
    """Create an experiment in the ``X-Team`` team, the ``mlplatform.team`` tag's team, or the personal team."""
    params = request_params(request)
    name = params.required_string("name")
    tags = params.key_value_list("tags")
    team_tag = next((tag["value"] for tag in tags if tag["key"] == TEAM_TAG), None)
    team = team_named(request.user, team_tag) if team_tag else target_team(request)
    experiment = services.experiment_create(
        user=request.user,
        team=team,
        name=name,
        tags=[tag for tag in tags if tag["key"] != TEAM_TAG],
        artifact_location=params.string("artifact_location") or None,
    )
    return json_response({"experiment_id": str(experiment.pk)})


@endpoint("GET")
def get_experiment(request: Request) -> HttpResponse:
    """One experiment by id ("0" is the caller's Default experiment)."""
    experiment = experiment_for(request, request_params(request).required_string("experiment_id"))
    return json_response({"experiment": experiment_json(experiment)})


@endpoint("GET")
def get_experiment_by_name(request: Request) -> HttpResponse:
    """One experiment (active or deleted) by name among the caller's teams."""
    name = request_params(request).required_string("experiment_name")
    experiment = experiment_by_name(request, name)
    if experiment is None:
        raise NotFound(f"Could not find experiment with name '{name}'")
    return json_response({"experiment": experiment_json(experiment)})


@endpoint("GET", "POST")
def search_experiments_view(request: Request) -> HttpResponse:
    """Experiments the caller may read, filtered, ordered and paged as MLflow does."""
    params = request_params(request)
    max_results = params.integer("max_results", DEFAULT_EXPERIMENTS_PER_PAGE)
    if max_results is None or not 1 <= max_results <= MAX_EXPERIMENTS_PER_PAGE:
        raise InvalidInput(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be between 1 and "
            f"{MAX_EXPERIMENTS_PER_PAGE}."
        )
    queryset = search.apply(
        filters.EXPERIMENTS,
        selectors.experiment_list(user=request.user, view=view_type(params, "view_type")),
        filter_string=params.string("filter"),
        order_by=params.string_list("order_by"),
    )
    page, next_token = search.page(queryset, page_token=params.string("page_token"), max_results=max_results)
    body: dict[str, Any] = {"experiments": [experiment_json(e) for e in page]}
    if next_token:
        body["next_page_token"] = next_token
    return json_response(body)


@endpoint("POST")
def update_experiment(request: Request) -> HttpResponse:
    """Rename an experiment."""
    params = request_params(request)
    experiment = experiment_for(request, params.required_string("experiment_id"))
    services.experiment_update(user=request.user, experiment=experiment, name=params.required_string("new_name"))
    return json_response({})


@endpoint("POST")
def delete_experiment(request: Request) -> HttpResponse:
    """Soft-delete an experiment and its runs (admin role)."""
    experiment = experiment_for(request, request_params(request).required_string("experiment_id"))
    services.experiment_delete(user=request.user, experiment=experiment, request=request)
    return json_response({})


@endpoint("POST")
def restore_experiment(request: Request) -> HttpResponse:
    """Restore a soft-deleted experiment and its runs (admin role)."""
    experiment = experiment_for(request, request_params(request).required_string("experiment_id"))
    services.experiment_restore(user=request.user, experiment=experiment, request=request)
    return json_response({})


@endpoint("POST")
def set_experiment_tag(request: Request) -> HttpResponse:
    """Set an experiment tag."""
    params = request_params(request)
    experiment = experiment_for(request, params.required_string("experiment_id"))
    services.experiment_set_tag(
        user=request.user,
        experiment=experiment,
        key=params.required_string("key"),
        value=params.string("value", ""),
    )
    return json_response({})


@endpoint("POST")
def delete_experiment_tag(request: Request) -> HttpResponse:
    """Delete an experiment tag."""
    params = request_params(request)
    experiment = experiment_for(request, params.required_string("experiment_id"))
    services.experiment_delete_tag(user=request.user, experiment=experiment, key=params.required_string("key"))
    return json_response({})
