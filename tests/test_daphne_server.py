"""The project served by a real daphne process, as in production."""

import json
import urllib.error
import urllib.request

import pytest

from tests.server import server_env, start_daphne

pytestmark = pytest.mark.server


def fetch(url: str, accept: str = "*/*") -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


def test_health_admin_and_schema_through_daphne(daphne_server, transactional_db):
    status, _, body = fetch(daphne_server.url + "/healthz")
    assert status == 200
    assert json.loads(body)["database"] == "ok"

    status, content_type, body = fetch(daphne_server.url + "/admin/login/")
    assert status == 200
    assert content_type.startswith("text/html")
    assert "mlplatform" in body

    status, _, body = fetch(daphne_server.url + "/api/v1/schema/", accept="application/vnd.oai.openapi+json")
    assert status == 200
    assert json.loads(body)["info"]["title"] == "mlplatform API"

    status, _, body = fetch(daphne_server.url + "/api/v1/definitely-missing/")
    assert status == 404
    assert json.loads(body)["error"]["code"] == "not_found"


def test_request_log_lines_are_json(daphne_server, transactional_db):
    fetch(daphne_server.url + "/healthz?probe=log")
    lines = [json.loads(line) for line in daphne_server.log().splitlines() if line.startswith("{")]
    assert any(line.get("path") == "/healthz" and line.get("status") == 200 for line in lines)


def test_unreachable_database_is_503(tmp_path):
    env = server_env("postgres://postgres@127.0.0.1:1/unreachable")
    server = start_daphne(env, tmp_path / "daphne.log", ok_statuses=(503,))
    try:
        status, _, body = fetch(server.url + "/healthz")
    finally:
        server.stop()
    assert status == 503
    assert json.loads(body)["database"] == "unavailable"
    assert json.loads(body)["status"] == "unavailable"
