"""A database that cannot be reached: 503 with Retry-After in every dialect (native API, MLflow façade, pages).

Injected for real, in-process: the default connection is swapped for one to a database that does not exist (an
SQLite file in a missing folder, or a PostgreSQL port nobody listens on, through the same connection pool settings
as production), so the driver itself fails to connect. The PostgreSQL restart under load is
``test_faults_postgres.py``; this file pins each error path on both backends.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connections
from django.test import Client

from tests.server import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def database_down(workspace) -> Iterator[None]:
    """From here on the default database cannot be reached (the workspace was created before)."""
    original = connections["default"]
    unreachable = {**original.settings_dict}
    if original.vendor == "sqlite":
        unreachable["NAME"] = "/nonexistent-mlplatform-folder/db.sqlite3"
    else:
        options = {**unreachable.get("OPTIONS", {})}
        if "pool" in options:
            options["pool"] = {**options["pool"], "timeout": 1}
        unreachable.update(HOST="127.0.0.1", PORT=str(free_port()), OPTIONS={**options, "connect_timeout": 1})
    # Its own alias, so Django's PostgreSQL pool (kept per alias) is a new one, not the working "default" pool.
    broken = original.__class__(unreachable, "unreachable")
    connections["default"] = broken
    try:
        yield
    finally:
        if getattr(broken, "pool", None) is not None:
            broken.close_pool()
        broken.close()
        connections["default"] = original


def test_native_api_answers_503_unavailable(client, workspace, database_down) -> None:
    response = client.get("/api/v1/experiments/", headers=workspace.headers())
    assert response.status_code == 503, response.content[:300]
    assert response.json()["error"]["code"] == "unavailable"
    assert response["Retry-After"] == "5"


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/2.0/mlflow/experiments/get-by-name?experiment_name=x"), ("post", "/api/2.0/mlflow/runs/log-batch")],
)
def test_mlflow_facade_answers_503_temporarily_unavailable(
    client, workspace, database_down, method: str, path: str
) -> None:
    if method == "get":
        response = client.get(path, headers=workspace.headers())
    else:
        body = {"run_id": workspace.run.run_uuid, "metrics": [{"key": "loss", "value": 1, "timestamp": 1, "step": 0}]}
        response = client.post(path, body, content_type="application/json", headers=workspace.headers())
    assert response.status_code == 503, response.content[:300]
    assert response.json() == {
        "error_code": "TEMPORARILY_UNAVAILABLE",
        "message": "The database is unavailable; retry shortly.",
    }
    assert response["Retry-After"] == "5"


def test_page_view_answers_503_with_retry_after(workspace, database_down) -> None:
    """DatabaseUnavailableMiddleware: the session lookup of a page view hits the dead database."""
    browser = Client()
    browser.cookies["sessionid"] = "a" * 32
    response = browser.get("/")
    assert response.status_code == 503, response.content[:300]
    assert response["Content-Type"].startswith("text/plain")
    assert response["Retry-After"] == "5"
    assert b"database is unavailable" in response.content
