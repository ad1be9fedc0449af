"""Artifact uploads sent with chunked transfer encoding (no Content-Length) store every byte.

DRF's ``request.stream`` is None without a Content-Length, which stored such uploads as empty files
with a 201; this needs a real server, since the test client always sends a Content-Length.
"""

from __future__ import annotations

import hashlib
import http.client
from urllib.parse import urlsplit

import pytest

from accounts.models import Role
from accounts.services import api_token_create
from accounts.tests.factories import MembershipFactory
from experiments.tests.factories import RunFactory

PAYLOAD = b"".join(bytes([n % 251]) * 4096 for n in range(300))  # 1.2 MB, not a multiple of any chunk size


def send(base_url: str, method: str, path: str, token: str) -> tuple[int, bytes]:
    """One request; a PUT sends PAYLOAD in chunks (no Content-Length)."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    headers = {"Authorization": f"Bearer {token}"}
    if method == "PUT":
        pieces = (PAYLOAD[i : i + 70_000] for i in range(0, len(PAYLOAD), 70_000))
        connection.request(method, path, body=pieces, headers=headers, encode_chunked=True)
    else:
        connection.request(method, path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, body


@pytest.mark.server
@pytest.mark.parametrize("api", ["native", "mlflow"])
def test_chunked_upload_stores_the_whole_body(transactional_db, daphne_server, api):
    membership = MembershipFactory(role=Role.EDITOR)
    run = RunFactory(experiment__team=membership.team)
    _, token = api_token_create(user=membership.user, name="chunked")
    if api == "native":
        path = f"/api/v1/runs/{run.run_uuid}/artifacts/data/blob.bin"
    else:
        path = f"/api/2.0/mlflow-artifacts/artifacts/{run.experiment_id}/{run.run_uuid}/artifacts/data/blob.bin"
    status, body = send(daphne_server.url, "PUT", path, token)
    assert status in (200, 201), body
    status, stored = send(daphne_server.url, "GET", f"/api/v1/runs/{run.run_uuid}/artifacts/data/blob.bin", token)
    assert status == 200
    assert (len(stored), hashlib.sha256(stored).hexdigest()) == (len(PAYLOAD), hashlib.sha256(PAYLOAD).hexdigest())
