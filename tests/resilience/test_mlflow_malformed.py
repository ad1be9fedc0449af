"""Hand-written hostile requests for the MLflow façade: every answer is a 2xx or a 4xx in MLflow's error shape.

Each endpoint gets a valid-looking base request; then every field in turn is replaced by a wrong type, a
missing value, a huge value, unicode tricks, NaN strings, NUL bytes, lone surrogates and injection text, and
the body itself is replaced by malformed, non-object, deeply nested and 10 MB JSON. A 5xx, a 4xx in another
shape, or a 4xx that changed the database fails the test.
"""

from __future__ import annotations

import io
import json
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection

from experiments.artifacts import artifact_write
from experiments.models import Experiment, ExperimentTag, Metric, Param, Run, RunTag
from registry.models import ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db

BAD_VALUES: list[Any] = [
    None,
    True,
    -1,
    2**70,
    "NaN",
    "",
    "x" * 100_000,
    "a\u0000b",
    "\ud800",
    "\u202eevil\u200b",
    [],
    {},
    {"$ne": 1},
    "1; DROP TABLE experiments_run;--",
]
MODELS = (Experiment, ExperimentTag, Run, Metric, Param, RunTag, RegisteredModel, ModelVersion)


def post_bodies(ws) -> dict[str, dict[str, Any]]:
    """A plausible request per POST/PATCH endpoint; each field is then broken in turn."""
    run_id, exp_id = ws.run.run_uuid, str(ws.experiment.pk)
    return {
        "experiments/create": {"name": "fuzzed", "artifact_location": "", "tags": [{"key": "k", "value": "v"}]},
        "experiments/update": {"experiment_id": exp_id, "new_name": "renamed"},
        "experiments/delete": {"experiment_id": exp_id},
        "experiments/restore": {"experiment_id": exp_id},
        "experiments/set-experiment-tag": {"experiment_id": exp_id, "key": "k", "value": "v"},
        "experiments/delete-experiment-tag": {"experiment_id": exp_id, "key": "k"},
        "experiments/search": {"max_results": 10, "filter": "name = 'x'", "order_by": ["name"], "page_token": ""},
        "runs/create": {"experiment_id": exp_id, "start_time": 1, "run_name": "r", "tags": []},
        "runs/update": {"run_id": run_id, "status": "FINISHED", "end_time": 2, "run_name": "r2"},
        "runs/delete": {"run_id": run_id},
        "runs/restore": {"run_id": run_id},
        "runs/log-metric": {"run_id": run_id, "key": "m", "value": 1.0, "timestamp": 1, "step": 0},
        "runs/log-parameter": {"run_id": run_id, "key": "p", "value": "v"},
        "runs/set-tag": {"run_id": run_id, "key": "t", "value": "v"},
        "runs/delete-tag": {"run_id": run_id, "key": "t"},
        "runs/log-batch": {
            "run_id": run_id,
            "metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": 1}],
            "params": [{"key": "bp", "value": "1"}],
            "tags": [{"key": "bt", "value": "1"}],
        },
        "runs/search": {"experiment_ids": [exp_id], "filter": "metrics.m > 0", "max_results": 10, "order_by": []},
        "runs/log-inputs": {"run_id": run_id, "datasets": []},
        "registered-models/create": {"name": "model", "description": "d", "tags": []},
        "registered-models/rename": {"name": "model", "new_name": "model2"},
        "registered-models/set-tag": {"name": "model", "key": "k", "value": "v"},
        "registered-models/get-latest-versions": {"name": "model", "stages": ["None"]},
        "registered-models/alias": {"name": "model", "alias": "champion", "version": "1"},
        "model-versions/create": {"name": "model", "source": f"runs:/{run_id}/model", "run_id": run_id},
        "model-versions/transition-stage": {"name": "model", "version": "1", "stage": "Staging"},
        "model-versions/set-tag": {"name": "model", "version": "1", "key": "k", "value": "v"},
        "logged-models": {"experiment_id": exp_id, "name": "lm"},
    }


def get_queries(ws) -> dict[str, dict[str, Any]]:
    """A plausible query string per GET endpoint."""
    run_id, exp_id = ws.run.run_uuid, str(ws.experiment.pk)
    return {
        "experiments/get": {"experiment_id": exp_id},
        "experiments/get-by-name": {"experiment_name": ws.experiment.name},
        "runs/get": {"run_id": run_id},
        "metrics/get-history": {"run_id": run_id, "metric_key": "m", "max_results": "10"},
        "metrics/get-history-bulk-interval": {"run_ids": run_id, "metric_key": "m", "max_results": "10"},
        "artifacts/list": {"run_id": run_id, "path": "", "page_token": ""},
        "registered-models/get": {"name": "model"},
        "registered-models/search": {"filter": "name = 'model'", "max_results": "10"},
        "model-versions/get": {"name": "model", "version": "1"},
        "model-versions/search": {"filter": "name = 'model'", "max_results": "10"},
        "model-versions/get-download-uri": {"name": "model", "version": "1"},
    }


def counts() -> tuple[int, ...]:
    """Row counts of every table a façade write touches, in one query."""
    tables = ", ".join(f"(SELECT COUNT(*) FROM {model._meta.db_table})" for model in MODELS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {tables}")
        return tuple(cursor.fetchone())


def assert_answer(response, what: str, before: dict[str, int]) -> None:
    """2xx, or a 4xx in MLflow's shape that wrote nothing."""
    assert response.status_code < 500, f"{what}: {response.status_code} {response.content[:500]!r}"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error_code", "message"}, f"{what}: {body}"
        assert isinstance(body["error_code"], str) and body["error_code"].isupper(), f"{what}: {body}"
        assert counts() == before, f"{what}: a refused request changed the database"


def send(client, ws, method: str, endpoint: str, payload: Any = None, raw: bytes | None = None):
    url = f"/api/2.0/mlflow/{endpoint}"
    if method == "GET":
        return client.get(url, payload, headers=ws.headers())
    body = raw if raw is not None else json.dumps(payload).encode()
    return client.generic(method, url, body, content_type="application/json", headers=ws.headers())


def mutated(base: dict[str, Any]):
    """Every field replaced by every bad value, then every field left out."""
    for field in base:
        for value in BAD_VALUES:
            yield f"{field}={str(value)[:20]!r}", {**base, field: value}
        yield f"without {field}", {key: item for key, item in base.items() if key != field}


@pytest.fixture
def ws(workspace, client):
    """The workspace plus a registered model "model" with version 1, created through the façade."""
    assert send(client, workspace, "POST", "registered-models/create", {"name": "model"}).status_code == 200
    artifact_write(user=workspace.editor, run=workspace.run, path="model/MLmodel", stream=io.BytesIO(b"flavors: {}"))
    source = f"runs:/{workspace.run.run_uuid}/model"
    body = {"name": "model", "source": source, "run_id": workspace.run.run_uuid}
    assert send(client, workspace, "POST", "model-versions/create", body).status_code == 200
    return workspace


_STUB = SimpleNamespace(run=SimpleNamespace(run_uuid="0" * 32), experiment=SimpleNamespace(pk=0, name=""))
POST_ENDPOINTS = sorted(post_bodies(_STUB))
GET_ENDPOINTS = sorted(get_queries(_STUB))


@pytest.mark.parametrize("endpoint", POST_ENDPOINTS)
def test_post_endpoint_survives_every_broken_field(client, ws, endpoint: str) -> None:
    base = post_bodies(ws)[endpoint]
    for what, body in mutated(base):
        before = counts()
        response = send(client, ws, "POST", endpoint, body)
        assert_answer(response, f"{endpoint} {what}", before)


@pytest.mark.parametrize("endpoint", GET_ENDPOINTS)
def test_get_endpoint_survives_every_broken_parameter(client, ws, endpoint: str) -> None:
    base = get_queries(ws)[endpoint]
    for what, query in mutated(base):
        # Percent-encode like a raw HTTP client would, lone surrogates included (as CESU-8 bytes).
        query_string = "&".join(
            f"{key}={quote(value if isinstance(value, str) else json.dumps(value), errors='surrogatepass')}"
            for key, value in query.items()
        )
        response = client.get(f"/api/2.0/mlflow/{endpoint}?{query_string}", headers=ws.headers())
        assert_answer(response, f"{endpoint} {what}", counts())


RAW_BODIES = {
    "malformed": b'{"run_id": ',
    "trailing garbage": b"{}}",
    "array": b"[1, 2, 3]",
    "string": b'"just a string"',
    "number": b"42",
    "null": b"null",
    "double-encoded garbage": b'"{not json"',
    "invalid utf-8": b'{"name": "\xff\xfe"}',
    "NaN token": b'{"run_id": "RUN", "key": "m", "value": NaN, "timestamp": 1, "step": NaN}',
    "deeply nested": b'{"run_id": "RUN", "metrics": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    "nested objects": b'{"tags": ' + b'{"a":' * 1000 + b"1" + b"}" * 1000 + b"}",
}


@pytest.mark.parametrize("endpoint", ["runs/log-batch", "runs/log-metric", "experiments/create", "runs/search"])
@pytest.mark.parametrize("kind", sorted(RAW_BODIES))
def test_malformed_bodies_are_a_4xx_in_mlflow_shape(client, workspace, endpoint: str, kind: str) -> None:
    raw = RAW_BODIES[kind].replace(b"RUN", workspace.run.run_uuid.encode())
    before = counts()
    response = send(client, workspace, "POST", endpoint, raw=raw)
    assert_answer(response, f"{endpoint} {kind}", before)
    if kind != "NaN token":
        assert 400 <= response.status_code < 500, response.content[:300]


def test_a_10_mb_body_is_refused_in_mlflow_shape(client, workspace) -> None:
    tags = [{"key": f"k{i}", "value": "v" * 8000} for i in range(1300)]
    raw = json.dumps({"run_id": workspace.run.run_uuid, "tags": tags}).encode()
    assert len(raw) > 10_000_000
    before = counts()
    response = send(client, workspace, "POST", "runs/log-batch", raw=raw)
    assert 400 <= response.status_code < 500
    assert_answer(response, "10 MB log-batch", before)


def test_over_limit_batches_are_a_400_naming_the_limit(client, workspace) -> None:
    metrics = [{"key": "m", "value": 1, "timestamp": 1, "step": i} for i in range(1001)]
    before = counts()
    response = send(client, workspace, "POST", "runs/log-batch", {"run_id": workspace.run.run_uuid, "metrics": metrics})
    assert response.status_code == 400
    assert "1000" in response.json()["message"]
    assert_answer(response, "1001 metrics", before)
