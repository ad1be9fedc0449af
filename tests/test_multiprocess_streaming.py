"""Live events cross processes: two real daphne processes share Redis (channels-redis) and the test database.

A WebSocket client on process A must receive, within a second, the points logged over HTTP to process B.
Uses REDIS_URL when set; otherwise a local Redis on a dedicated db number when one is reachable.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from websockets.sync.client import ClientConnection, connect

from accounts.models import Role
from accounts.services import api_token_create
from accounts.tests.factories import MembershipFactory, TeamFactory
from experiments.tests.factories import ExperimentFactory, RunFactory
from tests.server import Server, start_daphne

pytestmark = pytest.mark.server

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/9"  # dedicated to this test on the SQLite/in-memory pass
DEADLINE = 1.0
IDLE_SECONDS = 12
http = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, never through a proxy


def redis_url() -> str | None:
    """REDIS_URL, else the local Redis when it answers, else None."""
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    try:
        redis.Redis.from_url(LOCAL_REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return None
    return LOCAL_REDIS_URL


@pytest.fixture(scope="module")
def servers(live_server_env, tmp_path_factory) -> Iterator[tuple[Server, Server]]:
    """Processes A and B on the same database and the same Redis channel layer."""
    url = redis_url()
    if url is None:
        pytest.skip("needs Redis: set REDIS_URL or run redis-server on 127.0.0.1:6379")
    env = {**live_server_env, "REDIS_URL": url}
    folder = tmp_path_factory.mktemp("multiprocess")
    a = start_daphne(env, folder / "a.log")
    try:
        b = start_daphne(env, folder / "b.log")
    except Exception:
        a.stop()
        raise
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
def world(transactional_db) -> dict[str, Any]:
    team = TeamFactory(name="multiprocess")
    editor = MembershipFactory(team=team, role=Role.EDITOR).user
    viewer = MembershipFactory(team=team, role=Role.VIEWER).user
    run = RunFactory(experiment=ExperimentFactory(team=team), last_seq=1)
    return {
        "run": run,
        "editor_token": api_token_create(user=editor, name="writer")[1],
        "viewer_token": api_token_create(user=viewer, name="reader")[1],
    }


def subscribe(server: Server, path: str, token: str, query: str = "") -> ClientConnection:
    ws_url = server.url.replace("http://", "ws://") + f"{path}?token={token}{query}"
    return connect(ws_url, origin=server.url, proxy=None, open_timeout=10)


def post_batch(server: Server, run_uuid: str, token: str, metrics: list[dict[str, Any]]) -> int:
    request = urllib.request.Request(
        f"{server.url}/api/v1/runs/{run_uuid}/log-batch/",
        data=json.dumps({"metrics": metrics}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with http.open(request, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())["seq"]


def receive_until(ws: ClientConnection, predicate: Any, deadline: float) -> dict[str, Any]:
    """The first message matching ``predicate`` before ``deadline`` (time.monotonic), else fail."""
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "the event did not arrive in time"
        try:
            message = json.loads(ws.recv(timeout=remaining))
        except TimeoutError:
            pytest.fail("the event did not arrive in time")
        if predicate(message):
            return message


def test_points_logged_on_b_reach_a_subscriber_on_a_within_a_second(servers, world):
    a, b = servers
    run = world["run"]
    post_batch(b, run.run_uuid, world["editor_token"], [{"key": "warmup", "value": 0, "step": 0}])  # warm process B
    with subscribe(a, f"/ws/runs/{run.run_uuid}/", world["viewer_token"]) as ws:
        snapshot = json.loads(ws.recv(timeout=10))
        assert (snapshot["type"], snapshot["seq"]) == ("catchup", 2)
        for batch in range(5):
            metrics = [{"key": "loss", "value": batch + i / 10, "step": batch * 10 + i} for i in range(10)]
            started = time.monotonic()
            seq = post_batch(b, run.run_uuid, world["editor_token"], metrics)
            event = receive_until(ws, lambda m: m.get("type") == "run.event", started + DEADLINE)
            assert event["seq"] == seq
            assert [point[0] for point in event["metrics"]["loss"]] == [batch * 10 + i for i in range(10)]
            assert [point[2] for point in event["metrics"]["loss"]] == [m["value"] for m in metrics]


def test_experiment_subscriber_on_b_sees_points_logged_on_a(servers, world):
    a, b = servers
    run = world["run"]
    post_batch(a, run.run_uuid, world["editor_token"], [{"key": "warmup", "value": 0, "step": 0}])  # warm process A
    with subscribe(b, f"/ws/experiments/{run.experiment_id}/", world["viewer_token"]) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        started = time.monotonic()
        seq = post_batch(a, run.run_uuid, world["editor_token"], [{"key": "acc", "value": 0.5, "step": 7}])
        event = receive_until(ws, lambda m: m.get("type") == "run.event", started + DEADLINE)
        assert (event["run_id"], event["seq"], event["latest"]["acc"][0]) == (run.run_uuid, seq, 7)


def test_an_idle_subscriber_survives_the_layers_blocking_receive_timeout(servers, world):
    a, b = servers
    run = world["run"]
    with subscribe(a, f"/ws/runs/{run.run_uuid}/", world["viewer_token"]) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "catchup"
        # channels-redis blocks 5 s per receive; a Redis client read timeout at or under that would kill the consumer.
        time.sleep(IDLE_SECONDS)
        started = time.monotonic()
        seq = post_batch(b, run.run_uuid, world["editor_token"], [{"key": "loss", "value": 1, "step": 1}])
        event = receive_until(ws, lambda m: m.get("type") == "run.event", started + DEADLINE)
        assert event["seq"] == seq


def test_resume_on_a_after_points_logged_on_b_while_disconnected(servers, world):
    a, b = servers
    run = world["run"]
    with subscribe(a, f"/ws/runs/{run.run_uuid}/", world["viewer_token"]) as ws:
        since = json.loads(ws.recv(timeout=10))["seq"]
    for step in range(3):
        post_batch(b, run.run_uuid, world["editor_token"], [{"key": "loss", "value": step, "step": step}])
    with subscribe(a, f"/ws/runs/{run.run_uuid}/", world["viewer_token"], query=f"&since={since}") as ws:
        catchup = json.loads(ws.recv(timeout=10))
        assert (catchup["type"], catchup["from_seq"], catchup["more"]) == ("catchup", since, False)
        assert [point[0] for point in catchup["metrics"]["loss"]] == [0, 1, 2]
        started = time.monotonic()
        seq = post_batch(b, run.run_uuid, world["editor_token"], [{"key": "loss", "value": 3, "step": 3}])
        event = receive_until(ws, lambda m: m.get("type") == "run.event", started + DEADLINE)
        assert event["seq"] == seq == catchup["seq"] + 1
