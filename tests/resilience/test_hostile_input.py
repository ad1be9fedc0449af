"""Hostile filter expressions and artifact paths: a 4xx (or a correct empty answer), never a 5xx, never a leak."""

from __future__ import annotations

import io
import time

import pytest

from experiments import services
from experiments.artifacts import artifact_write, run_artifact_dir
from experiments.models import Run

pytestmark = pytest.mark.django_db

INJECTIONS = [
    "params.model = 'x' OR 1=1 --",
    "params.model = 'x'; DROP TABLE experiments_run; --",
    "params.model = '' OR '1'='1'",
    'tags."mlflow.runName" = "a" UNION SELECT password FROM accounts_user --',
    "metrics.acc > 0 AND (SELECT 1) = 1",
    "params.`model` = 'x\\' OR 1=1 --'",
    "params.model LIKE '%' ESCAPE '\\'",
    "attributes.run_id IN ('a') OR 1=1",
    "metrics.acc > 1e99999",
    "metrics.acc > NaN",
    "params.model = 'a\u0000b'",
    "params.\u202emodel = 'x'",
]
PATHOLOGICAL = [
    "params.a = 'x' and " * 2000 + "params.a = 'x'",
    "(" * 5000 + "params.a = 'x'" + ")" * 5000,
    "params.a LIKE '" + "%_" * 3000 + "'",
    "'" * 10_000,
    "params." + "a" * 9000 + " = 'x'",
    "metrics.acc > " + "9" * 5000,
    "attributes.run_id IN (" + ", ".join(f"'{i}'" for i in range(2000)) + ")",
]


@pytest.fixture
def searchable(workspace):
    """Two runs with a param, so a filter that leaks would return too much."""
    other = services.run_create(user=workspace.editor, experiment=workspace.experiment, name="other")
    services.log_param(user=workspace.editor, run=workspace.run, key="model", value="cnn")
    services.log_param(user=workspace.editor, run=other, key="model", value="rnn")
    return workspace


def search(client, ws, expression: str):
    return client.get("/api/v1/runs/", {"experiment_id": ws.experiment.pk, "filter": expression}, headers=ws.headers())


@pytest.mark.parametrize("expression", INJECTIONS)
def test_sql_injection_attempts_are_refused_or_harmless(client, searchable, expression: str) -> None:
    response = search(client, searchable, expression)
    assert response.status_code in {200, 400}, response.content[:300]
    if response.status_code == 200:
        assert response.json()["results"] == [], "an injected condition matched runs"
    else:
        assert response.json()["error"]["code"].startswith("invalid")
    assert Run.objects.count() == 2


@pytest.mark.parametrize("expression", PATHOLOGICAL, ids=range(len(PATHOLOGICAL)))
def test_pathological_filters_answer_fast_with_a_4xx(client, searchable, expression: str) -> None:
    started = time.monotonic()
    response = search(client, searchable, expression[:10_000])
    elapsed = time.monotonic() - started
    assert response.status_code in {200, 400}, response.content[:300]
    assert elapsed < 3, f"took {elapsed:.1f}s"


@pytest.mark.parametrize("expression", INJECTIONS[:4])
def test_mlflow_search_refuses_injections_too(client, searchable, expression: str) -> None:
    body = {"experiment_ids": [str(searchable.experiment.pk)], "filter": expression}
    response = client.post(
        "/api/2.0/mlflow/runs/search", body, content_type="application/json", headers=searchable.headers()
    )
    assert response.status_code in {200, 400}
    if response.status_code == 200:
        assert response.json().get("runs", []) == []


HUGE = "9" * 5000
# (method, MLflow search endpoint, filter): every parser behind the façade, fed what used to crash it.
MLFLOW_PATHOLOGICAL = [
    ("post", "runs/search", "(" * 5000 + "metrics.acc < 1" + ")" * 5000),
    ("post", "runs/search", f"metrics.acc > {HUGE}"),
    ("post", "runs/search", " or ".join(["metrics.acc > 1"] * 1500)),
    ("post", "experiments/search", f"creation_time > {HUGE}"),
    ("post", "experiments/search", "creation_time > 99999999999999999"),
    ("post", "logged-models/search", " and ".join(["name = 'x'"] * 1500)),
    ("get", "model-versions/search", f"version_number = {HUGE}"),
    ("get", "model-versions/search", "version_number IN ('99999999999999999999999')"),
    ("get", "model-versions/search", "version_number = '1.5'"),
    ("get", "registered-models/search", " AND ".join(["name = 'x'"] * 1500)),
]


@pytest.mark.parametrize(("method", "endpoint", "expression"), MLFLOW_PATHOLOGICAL, ids=range(len(MLFLOW_PATHOLOGICAL)))
def test_pathological_mlflow_filters_are_invalid_parameter_values(
    client, searchable, method: str, endpoint: str, expression: str
) -> None:
    url = f"/api/2.0/mlflow/{endpoint}"
    params = {"filter": expression, "experiment_ids": [str(searchable.experiment.pk)]}
    if method == "get":
        response = client.get(url, params, headers=searchable.headers())
    else:
        response = client.post(url, params, content_type="application/json", headers=searchable.headers())
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert len(response.json()["message"]) < 300


def test_ids_past_the_int64_range_in_any_path_are_a_4xx(client, workspace) -> None:
    """Every integer path parameter of every documented operation, set to 10^21 (the fuzzer found one 500)."""
    schema = client.get("/api/v1/schema/?format=json", headers=workspace.headers()).json()
    tried, crashed = 0, []
    for template, operations in schema["paths"].items():
        for method, operation in operations.items():
            parameters = [p for p in operation.get("parameters", []) if p["in"] == "path"]
            for huge in (p["name"] for p in parameters if p["schema"].get("type") == "integer"):
                url = template
                for parameter in parameters:
                    if parameter["name"] == huge:
                        value = "4038962968655808167936"
                    elif parameter["schema"].get("type") == "integer":
                        value = str(workspace.team.pk)
                    else:
                        value = workspace.run.run_uuid
                    url = url.replace("{" + parameter["name"] + "}", value)
                response = client.generic(
                    method.upper(), url, b"{}", content_type="application/json", headers=workspace.headers(admin=True)
                )
                tried += 1
                if response.status_code >= 500:
                    crashed.append(f"{method.upper()} {url}: {response.status_code}")
    assert tried > 50
    assert not crashed, crashed


def test_ids_past_the_int64_range_in_any_query_are_a_4xx(client, workspace) -> None:
    """Every integer query parameter of every documented GET, set to 10^21 and to -10^21."""
    schema = client.get("/api/v1/schema/?format=json", headers=workspace.headers()).json()
    tried, crashed = 0, []
    for template, operations in schema["paths"].items():
        operation = operations.get("get", {})
        parameters = operation.get("parameters", [])
        if any(p["in"] == "path" for p in parameters):
            continue
        for parameter in parameters:
            kind = parameter["schema"].get("type")
            if parameter["in"] != "query" or "integer" not in (kind, parameter["schema"].get("items", {}).get("type")):
                continue
            for value in ("4038962968655808167936", "-4038962968655808167936"):
                response = client.get(template, {parameter["name"]: value}, headers=workspace.headers(admin=True))
                tried += 1
                if response.status_code >= 500:
                    crashed.append(f"GET {template}?{parameter['name']}={value}: {response.status_code}")
    assert tried > 5
    assert not crashed, crashed


TRAVERSALS = [
    "../secret.txt",
    "a/../../secret.txt",
    "..%2fsecret.txt",
    "%2e%2e/secret.txt",
    "a/%2e%2e/%2e%2e/secret.txt",
    "/etc/passwd",
    "a\\..\\..\\secret.txt",
    "a%00.txt",
    "\u2025/secret.txt",
    "a/\uff0e\uff0e/\uff0e\uff0e/secret.txt",
    "a//b",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_artifact_paths_cannot_escape_the_run_folder(client, workspace, path: str, tmp_path, settings) -> None:
    secret = tmp_path.parent / "secret.txt"
    secret.write_text("top secret")
    url = f"/api/v1/runs/{workspace.run.run_uuid}/artifacts/{path}"
    upload = client.generic("PUT", url, b"overwrite", headers=workspace.headers())
    download = client.get(url, headers=workspace.headers())
    for response in (upload, download):
        assert response.status_code < 500, response.content[:300]
        if response.status_code >= 400:
            assert "error" in response.json()
    assert secret.read_text() == "top secret"
    body = b"".join(download.streaming_content) if download.streaming else download.content
    assert b"top secret" not in body
    root = run_artifact_dir(workspace.run).resolve()
    for written in root.parents[2].rglob("*"):
        if written.is_file():
            assert root in written.resolve().parents, f"written outside the run folder: {written}"


def test_symlink_inside_the_run_folder_is_not_followed_out(client, workspace, tmp_path) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_text("top secret")
    artifact_write(user=workspace.editor, run=workspace.run, path="ok.txt", stream=io.BytesIO(b"fine"))
    folder = run_artifact_dir(workspace.run)
    (folder / "link.txt").symlink_to(secret)
    (folder / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    base = f"/api/v1/runs/{workspace.run.run_uuid}/artifacts"
    for path in ("link.txt", "linkdir/outside.txt"):
        response = client.get(f"{base}/{path}", headers=workspace.headers())
        assert response.status_code in {400, 404}, path
        upload = client.generic("PUT", f"{base}/{path}", b"overwrite", headers=workspace.headers())
        assert upload.status_code in {400, 404, 409}, path
    assert secret.read_text() == "top secret"
    listing = client.get(f"{base}/?path=linkdir", headers=workspace.headers())
    assert listing.status_code in {200, 400}
    if listing.status_code == 200:
        assert listing.json()["files"] == []
