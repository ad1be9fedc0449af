"""Request body size (413) and JSON nesting depth (400) limits, for the native API, the MLflow façade and pages."""

from __future__ import annotations

import json

import pytest
from django.test import Client

import mlplatform.security as security
from experiments.models import Metric, Param
from mlplatform.security import json_depth

pytestmark = pytest.mark.django_db


def log_batch_url(workspace) -> str:
    return f"/api/v1/runs/{workspace.run.run_uuid}/log-batch/"


def post(client: Client, url: str, body: bytes, workspace, content_type: str = "application/json"):
    return client.generic("POST", url, body, content_type=content_type, headers=workspace.headers())


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"", 0),
        (b"1", 0),
        (b"[]", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'"[[[[[["', 0),
        (b'["\\"[[[", [[1]]]', 3),
        (b'["\\\\", [[1]]]', 3),
        (b'["\\\\\\"[[", [1]]', 2),
    ],
)
def test_json_depth_ignores_brackets_inside_strings(text: bytes, depth: int) -> None:
    assert json_depth(text) == depth


def test_json_depth_carries_string_state_across_chunks(monkeypatch) -> None:
    body = json.dumps({'k\\["': ["\\\\", ['x"]]]', [[]]]]}).encode()
    for size in (1, 2, 3, 5, 7):
        monkeypatch.setattr(security, "_CHUNK", size)
        assert json_depth(body) == 5, size


def test_json_depth_stops_early_on_a_huge_body() -> None:
    assert json_depth(nested(5_000_000), stop_above=32) > 32


def test_body_over_the_limit_is_a_413_envelope_and_writes_nothing(client, workspace, settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    metrics = [{"key": f"m{i}", "value": i, "step": 0} for i in range(100)]
    response = post(client, log_batch_url(workspace), json.dumps({"metrics": metrics}).encode(), workspace)
    assert response.status_code == 413
    body = response.json()
    assert body["error"]["code"] == "payload_too_large"
    assert body["error"]["details"] == {"limit_bytes": 2000}
    assert Metric.objects.count() == 0


def test_body_over_the_limit_on_the_mlflow_facade_answers_in_mlflow_shape(client, workspace, settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = json.dumps({"run_id": workspace.run.run_uuid, "key": "p", "value": "x" * 500}).encode()
    response = post(client, "/api/2.0/mlflow/runs/log-parameter", body, workspace)
    assert response.status_code == 413
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "limit of 100 bytes" in response.json()["message"]
    assert Param.objects.count() == 0


def test_body_at_the_limit_passes(client, workspace, settings) -> None:
    body = json.dumps({"params": [{"key": "lr", "value": "0.1"}]}).encode()
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(body)
    response = post(client, log_batch_url(workspace), body, workspace)
    assert response.status_code == 200, response.content
    assert Param.objects.get().value == "0.1"


def test_json_nested_over_the_limit_is_a_400_envelope(client, workspace) -> None:
    body = b'{"metrics": [], "extra": ' + nested(40) + b"}"
    response = post(client, log_batch_url(workspace), body, workspace)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "nested 41 levels deep, over the limit of 32" in response.json()["error"]["message"]


def test_json_nested_at_the_limit_is_accepted(client, workspace) -> None:
    body = b'{"params": [{"key": "a", "value": "b"}], "extra": ' + nested(30) + b"}"
    response = post(client, log_batch_url(workspace), body, workspace)
    assert response.status_code == 200, response.content
    assert Param.objects.filter(run=workspace.run).count() == 1


def test_brackets_inside_string_values_do_not_count(client, workspace) -> None:
    value = "[" * 1000 + '\\"{' * 100
    body = json.dumps({"params": [{"key": "brackets", "value": value[:5000]}]}).encode()
    response = post(client, log_batch_url(workspace), body, workspace)
    assert response.status_code == 200, response.content
    assert Param.objects.get(key="brackets").value == value[:5000]


def test_pathologically_deep_json_is_a_400_not_a_recursion_error(client, workspace) -> None:
    response = post(client, log_batch_url(workspace), nested(200_000), workspace)
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"max_depth": 32}


def test_deep_json_on_the_mlflow_facade_answers_in_mlflow_shape(client, workspace) -> None:
    body = b'{"run_id": "' + workspace.run.run_uuid.encode() + b'", "metrics": ' + nested(100_000) + b"}"
    response = post(client, "/api/2.0/mlflow/runs/log-batch", body, workspace)
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert Metric.objects.count() == 0


def test_deep_json_without_a_content_type_is_still_checked(client, workspace) -> None:
    response = post(client, "/api/2.0/mlflow/runs/log-batch", nested(5000), workspace, content_type="text/plain")
    assert response.status_code == 400
    assert "nested 5000 levels" in response.json()["message"]


def test_raw_artifact_uploads_are_exempt_from_both_limits(client, workspace, settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    content = nested(1000)
    url = f"/api/v1/runs/{workspace.run.run_uuid}/artifacts/deep.json"
    response = client.generic("PUT", url, content, content_type="application/json", headers=workspace.headers())
    assert response.status_code == 201, response.content
    download = client.get(url, headers=workspace.headers())
    assert b"".join(download.streaming_content) == content


def test_form_posts_are_not_depth_checked(client) -> None:
    response = client.post("/login/", {"username": "[" * 100, "password": "{" * 100})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_get_requests_are_not_checked(client, workspace) -> None:
    response = client.get(f"/api/v1/runs/{workspace.run.run_uuid}/", headers=workspace.headers())
    assert response.status_code == 200


def test_nul_characters_in_json_are_a_400_and_write_nothing(client, workspace) -> None:
    body = json.dumps({"params": [{"key": "p", "value": "a\u0000b"}]}).encode()
    response = post(client, log_batch_url(workspace), body, workspace)
    assert response.status_code == 400
    assert "NUL character" in response.json()["error"]["message"]
    assert Param.objects.count() == 0


def test_an_escaped_backslash_before_u0000_is_plain_text(client, workspace) -> None:
    body = json.dumps({"params": [{"key": "p", "value": "C:\\u0000"}]}).encode()
    response = post(client, log_batch_url(workspace), body, workspace)
    assert response.status_code == 200, response.content
    assert Param.objects.get().value == "C:\\u0000"


def test_nul_in_the_query_string_is_a_400(client, workspace) -> None:
    response = client.get("/api/2.0/mlflow/runs/get?run_id=a%00b", headers=workspace.headers())
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_nul_in_the_path_is_a_400(client, workspace) -> None:
    response = client.get(f"/api/v1/runs/{workspace.run.run_uuid}/tags/a%00b", headers=workspace.headers())
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_lone_surrogates_are_a_400_but_pairs_are_text(client, workspace) -> None:
    lone = b'{"params": [{"key": "p", "value": "\\ud800"}]}'
    assert post(client, log_batch_url(workspace), lone, workspace).status_code == 400
    pair = b'{"params": [{"key": "p", "value": "\\ud83d\\ude80"}]}'
    assert post(client, log_batch_url(workspace), pair, workspace).status_code == 200
    assert Param.objects.get().value == "\U0001f680"


class FakeRequest:
    """Just what ``json_body``/``body_depth`` read."""

    def __init__(self, body: bytes) -> None:
        self.body = body


@pytest.mark.parametrize(
    ("body", "depth", "parsed"),
    [
        (b'{"a": [1, {"b": []}], "c": {"d": 1}}', 4, True),  # orjson parses it: depth from the structure
        (b'{"v": NaN, "w": [[1]]}', 3, False),  # orjson refuses NaN literals: the text is scanned
        (b'{"broken": [[', 3, False),  # malformed: scanned, the view reports the JSON error
        (nested(2000), 2000, False),  # deeper than orjson parses: scanned
    ],
)
def test_body_depth_parses_once_when_it_can(body: bytes, depth: int, parsed: bool) -> None:
    request = FakeRequest(body)
    assert security.body_depth(request, body, stop_above=5000) == depth
    assert hasattr(request, "_json_body") is parsed


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"a": 1.5, "b": [true, null]}', {"a": 1.5, "b": [True, None]}),
        (b'{"v": NaN, "w": -Infinity}', {"v": float("nan"), "w": float("-inf")}),
        (b'{"big": 123456789012345678901234567890}', {"big": 123456789012345678901234567890}),
    ],
)
def test_json_body_matches_the_standard_library(body: bytes, expected: dict) -> None:
    data = security.json_body(FakeRequest(body))
    assert json.dumps(data, sort_keys=True) == json.dumps(expected, sort_keys=True)


def test_json_body_is_parsed_once_and_malformed_json_is_the_standard_librarys_error() -> None:
    request = FakeRequest(b'{"a": [1, 2]}')
    first = security.json_body(request)
    assert security.json_body(request) is first
    with pytest.raises(json.JSONDecodeError, match="Expecting"):
        security.json_body(FakeRequest(b'{"a": '))
