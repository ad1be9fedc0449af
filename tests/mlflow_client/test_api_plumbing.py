"""The façade's shared plumbing: MLflow error shape, auth, routing, body and parameter parsing."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest
from django.http import QueryDict

from accounts.services import api_token_create
from experiments.models import Experiment
from mlplatform.errors import Conflict, InvalidInput, PayloadTooLarge, Unavailable
from mlplatform.mlflow_api import RequestParams, exception_response
from tests.mlflow_client.helpers import call, error_of

pytestmark = pytest.mark.django_db


def test_anonymous_is_unauthenticated_with_a_challenge(api_client) -> None:
    response = call(api_client, "POST", "experiments/create", {"name": "x"})
    assert error_of(response) == (401, "UNAUTHENTICATED")
    assert response["WWW-Authenticate"]
    assert not Experiment.objects.exists()


def test_invalid_bearer_token_is_unauthenticated(api_client) -> None:
    response = call(api_client, "GET", "experiments/search", HTTP_AUTHORIZATION="Bearer mlp_abcdefgh_wrong")
    assert error_of(response) == (401, "UNAUTHENTICATED")


def test_api_token_as_bearer_authenticates(api_client, editor) -> None:
    _token, plaintext = api_token_create(user=editor, name="t")
    response = call(api_client, "POST", "experiments/create", {"name": "tok"}, HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert response.status_code == 200
    assert Experiment.objects.get(pk=int(response.json()["experiment_id"])).created_by == editor


def test_basic_with_username_and_api_token_authenticates(api_client, editor) -> None:
    _token, plaintext = api_token_create(user=editor, name="t")
    credentials = base64.b64encode(f"{editor.username}:{plaintext}".encode()).decode()
    response = call(api_client, "GET", "experiments/search", HTTP_AUTHORIZATION=f"Basic {credentials}")
    assert response.status_code == 200


def test_unknown_endpoint_is_endpoint_not_found(client_for, editor) -> None:
    response = call(client_for(editor), "POST", "runs/does-not-exist", {})
    assert error_of(response) == (404, "ENDPOINT_NOT_FOUND")


def test_unknown_ajax_endpoint_is_endpoint_not_found(client_for, editor) -> None:
    response = call(client_for(editor), "GET", "/ajax-api/2.0/mlflow/nothing-here")
    assert error_of(response) == (404, "ENDPOINT_NOT_FOUND")


def test_ajax_alias_serves_the_same_endpoint(client_for, editor) -> None:
    response = call(client_for(editor), "POST", "/ajax-api/2.0/mlflow/experiments/create", {"name": "ajax"})
    assert response.status_code == 200
    assert Experiment.objects.filter(name="ajax").exists()


def test_wrong_method_is_refused_without_writing(client_for, editor) -> None:
    response = call(client_for(editor), "GET", "experiments/create", {"name": "x"})
    assert error_of(response) == (405, "ENDPOINT_NOT_FOUND")
    assert not Experiment.objects.exists()


def test_malformed_json_is_invalid_parameter_value(client_for, editor) -> None:
    response = call(client_for(editor), "POST", "experiments/create", '{"name": ')
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    assert "Malformed JSON" in response.json()["message"]
    assert not Experiment.objects.exists()


def test_json_that_is_not_an_object_is_refused(client_for, editor) -> None:
    response = call(client_for(editor), "POST", "experiments/create", "[1, 2]")
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    assert not Experiment.objects.exists()


def test_double_encoded_json_is_accepted_as_mlflow_does(client_for, editor) -> None:
    response = call(client_for(editor), "POST", "experiments/create", '"{\\"name\\": \\"twice\\"}"')
    assert response.status_code == 200
    assert Experiment.objects.filter(name="twice").exists()


def test_missing_required_parameter_names_it(client_for, editor) -> None:
    response = call(client_for(editor), "POST", "experiments/create", {})
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    assert "Missing value for required parameter 'name'" in response.json()["message"]


def test_wrong_type_names_parameter_and_type(client_for, editor) -> None:
    response = call(client_for(editor), "POST", "experiments/create", {"name": 12})
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    assert "parameter 'name'" in response.json()["message"] and "int" in response.json()["message"]
    assert not Experiment.objects.exists()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (InvalidInput("bad"), (400, "INVALID_PARAMETER_VALUE")),
        (Conflict("dup"), (400, "RESOURCE_ALREADY_EXISTS")),
        (PayloadTooLarge("big"), (413, "INVALID_PARAMETER_VALUE")),
        (Unavailable("down"), (503, "TEMPORARILY_UNAVAILABLE")),
    ],
)
def test_domain_errors_map_to_mlflow_codes(error, expected) -> None:
    response = exception_response(error)
    assert (response.status_code, json.loads(response.content)["error_code"]) == expected


def test_unexpected_exception_is_internal_error_without_details() -> None:
    response = exception_response(RuntimeError("secret internals"))
    body = json.loads(response.content)
    assert response.status_code == 500
    assert body["error_code"] == "INTERNAL_ERROR" and "secret" not in body["message"]


def test_request_params_convert_like_protobuf_json() -> None:
    params = RequestParams({"n": "12", "f": 3.0, "b": "true", "s": "x", "l": ["a"]})
    assert params.integer("n") == 12
    assert params.integer("f") == 3
    assert params.boolean("b") is True
    assert params.string_list("l") == ["a"]
    assert params.integer("absent", 7) == 7


@pytest.mark.parametrize(
    ("data", "call_name"),
    [
        ({"n": "1.5"}, "integer"),
        ({"n": True}, "integer"),
        ({"n": 2**64}, "integer"),
        ({"n": "maybe"}, "boolean"),
        ({"n": "abc"}, "string_list"),
        ({"n": {"k": 1}}, "object_list"),
        ({"n": ["x"]}, "key_value_list"),
    ],
)
def test_request_params_reject_wrong_types(data, call_name) -> None:
    with pytest.raises(InvalidInput):
        getattr(RequestParams(data), call_name)("n")


def test_query_string_repeated_parameters_are_lists() -> None:
    params = RequestParams(QueryDict("stages=Staging&stages=Production&name=m"))
    assert params.string_list("stages") == ["Staging", "Production"]
    assert params.required_string("name") == "m"


def test_server_info_is_public_and_says_no_multipart(api_client) -> None:
    response = api_client.get("/api/3.0/mlflow/server-info")
    assert response.status_code == 200
    assert response.json()["multipart_uploads_enabled"] is False


@pytest.mark.parametrize(
    "module", ["experiments.mlflow.artifact_views", "experiments.mlflow.lookups", "registry.mlflow.views"]
)
def test_endpoint_modules_import_before_the_url_conf(module: str) -> None:
    """Importing an endpoint module first (a script, a test) must not be a circular import through the routes."""
    code = (
        f"import django; django.setup(); import {module}; "
        "from django.urls import resolve; resolve('/api/2.0/mlflow/runs/get')"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mlplatform.settings_test"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
