"""The HTTP side of mlplatform.asgi: one worker-thread hop per request, live events sent before the response."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers, get_channel_layer
from django.core import signals

from accounts.models import Role
from accounts.services import api_token_create
from accounts.tests.factories import MembershipFactory
from experiments.artifacts import run_artifact_dir
from experiments.models import Metric, Run
from experiments.tests.factories import ExperimentFactory, RunFactory
from mlplatform import asgi_http
from mlplatform.asgi import application
from mlplatform.asgi_http import OneHopASGIHandler, worker_threads
from mlplatform.events import run_group

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """A new in-memory layer per test: its queues belong to one event loop."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def scope(method: str, path: str, *, query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }


async def call(app: Any, request_scope: dict, body: bytes = b"", on_start: Any = None) -> tuple[int, bytes, list]:
    """Run one request through ``app``; returns status, body and every message sent."""
    sent: list[dict] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start" and on_start is not None:
            await on_start()
        sent.append(message)

    await app(request_scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, content, sent


@database_sync_to_async
def editor_with_run() -> tuple[str, str]:
    membership = MembershipFactory(role=Role.EDITOR)
    run = RunFactory(experiment=ExperimentFactory(team=membership.team))
    _, token = api_token_create(user=membership.user, name="asgi")
    return token, run.run_uuid


async def test_a_logged_point_is_stored_and_its_event_sent_before_the_response():
    token, run_uuid = await editor_with_run()
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(run_group(run_uuid), channel)
    seen_before_response: list[dict] = []

    async def on_start() -> None:  # the response is about to go out: the event must already be queued
        seen_before_response.append(await asyncio.wait_for(layer.receive(channel), timeout=1))

    body = json.dumps({"run_id": run_uuid, "key": "loss", "value": 0.25, "timestamp": 5, "step": 3}).encode()
    headers = [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json")]
    status, content, _ = await call(
        application, scope("POST", "/api/2.0/mlflow/runs/log-metric", headers=headers), body, on_start
    )
    assert (status, json.loads(content)) == (200, {})
    event = json.loads(seen_before_response[0]["text"])
    assert event["metrics"] == {"loss": [[3, 5, 0.25]]}
    stored = await database_sync_to_async(lambda: list(Metric.objects.values_list("key", "value", "step")))()
    assert stored == [("loss", 0.25, 3)]


async def test_a_failed_write_publishes_nothing():
    token, run_uuid = await editor_with_run()
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(run_group(run_uuid), channel)
    body = json.dumps({"run_id": run_uuid, "key": "../etc", "value": 1, "timestamp": 5}).encode()
    headers = [(b"authorization", f"Bearer {token}".encode()), (b"content-type", b"application/json")]
    status, _, _ = await call(application, scope("POST", "/api/2.0/mlflow/runs/log-metric", headers=headers), body)
    assert status == 400
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(layer.receive(channel), timeout=0.2)


async def test_streaming_responses_are_closed_after_they_are_sent():
    events: list[str] = []

    def finished(**kwargs: Any) -> None:
        events.append("finished")

    signals.request_finished.connect(finished)
    try:
        status, content, sent = await call(application, scope("GET", "/static/js/app.js"))
    finally:
        signals.request_finished.disconnect(finished)
    assert status == 200 and b"function" in content
    assert events == ["finished"]  # once, after the body (a non-streaming response closes before sending)
    assert sent[-1]["type"] == "http.response.body" and not sent[-1].get("more_body")


async def test_a_large_download_is_sent_in_chunks_not_read_whole():
    token, run_uuid = await editor_with_run()
    run = await database_sync_to_async(Run.objects.get)(run_uuid=run_uuid)
    folder = run_artifact_dir(run)
    folder.mkdir(parents=True, exist_ok=True)
    data = bytes(range(256)) * 1024 * 1  # 256 KiB: four chunks of 64 KiB
    (folder / "weights.bin").write_bytes(data)
    headers = [(b"authorization", f"Bearer {token}".encode())]
    status, content, sent = await call(
        application, scope("GET", f"/api/v1/runs/{run_uuid}/artifacts/weights.bin", headers=headers)
    )
    assert status == 200 and content == data
    assert len([m for m in sent if m["type"] == "http.response.body" and m.get("body")]) >= 4


async def test_an_undecodable_query_string_is_a_400():
    status, _, _ = await call(application, scope("GET", "/healthz", query=b"\xff"))
    assert status == 400


async def test_a_client_gone_before_its_body_arrived_gets_nothing():
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    await OneHopASGIHandler()(scope("POST", "/api/2.0/mlflow/runs/log-metric"), receive, send)
    assert sent == []


async def test_only_http_is_handled_here():
    with pytest.raises(ValueError, match="websocket"):
        await OneHopASGIHandler()({"type": "websocket"}, None, None)


def test_worker_threads_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("ASGI_THREADS", "4")
    assert worker_threads() == 4
    monkeypatch.setenv("ASGI_THREADS", "0")
    assert worker_threads() == 1
    monkeypatch.setenv("ASGI_THREADS", "many")
    assert worker_threads() == asgi_http.DEFAULT_THREADS
    monkeypatch.delenv("ASGI_THREADS")
    assert worker_threads() == asgi_http.DEFAULT_THREADS
