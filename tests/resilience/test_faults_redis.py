"""Redis killed and restarted while WebSocket clients follow a run that is being logged to.

Injected: ``kill -9`` of a private redis-server (channel layer, cache and throttling all use it) for two
seconds while one writer logs a point per request and a subscriber follows ``/ws/runs/<id>/``. Expected: every
HTTP write still succeeds (events are best-effort; the data is in the database), the subscriber reconnects
with ``?since=<last seq>`` and ends up with every point exactly once, without gaps.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
import requests
import websockets

from tests.resilience.services import PrivateRedis, require_redis_binary
from tests.server import start_daphne

pytestmark = [pytest.mark.postgres, pytest.mark.server]

POINTS = 60
OUTAGE_SECONDS = 2.0


@pytest.fixture
def private_redis(tmp_path):
    """A private redis-server on a free port."""
    require_redis_binary()
    redis = PrivateRedis(folder=tmp_path / "redis")
    redis.start()
    yield redis
    redis.stop()


@pytest.fixture
def redis_server(private_redis, live_server_env, live_workspace, tmp_path):
    """daphne on the test database with the private Redis as channel layer and cache."""
    env = {**live_server_env, "REDIS_URL": private_redis.url, "REDIS_PREFIX": "faults"}
    server = start_daphne(env, tmp_path / "daphne.log")
    yield server
    server.stop()


async def follow(
    url: str, origin: str, stop: threading.Event, seen: dict[int, list[float]], reconnects: list[str]
) -> None:
    """Follow the run stream, reconnecting with ?since=<last seq> after any drop, until ``stop`` and caught up."""
    last = 0
    while True:
        try:
            async with websockets.connect(
                f"{url}&since={last}", origin=origin, proxy=None, open_timeout=5, close_timeout=1
            ) as socket:
                while True:
                    message = json.loads(await asyncio.wait_for(socket.recv(), timeout=3))
                    if message["type"] == "catchup":
                        points = message.get("metrics", {}).get("loss", [])
                        last = max(last, message["seq"])
                    elif message["type"] == "run.event":
                        points = message.get("metrics", {}).get("loss", [])
                        last = message["seq"]
                    else:
                        continue
                    for step, _timestamp, value in points:
                        seen.setdefault(step, []).append(value)
        except (TimeoutError, OSError, websockets.WebSocketException) as exc:
            if stop.is_set() and len(seen) >= POINTS:
                return
            reconnects.append(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(0.2)


def test_redis_restart_keeps_http_working_and_websockets_resume_without_gaps(
    private_redis, redis_server, live_workspace
) -> None:
    run_id = live_workspace.run.run_uuid
    ws_url = redis_server.url.replace("http://", "ws://") + f"/ws/runs/{run_id}/?token={live_workspace.token}"
    stop = threading.Event()
    seen: dict[int, list[float]] = {}
    reconnects: list[str] = []
    subscriber = threading.Thread(
        target=lambda: asyncio.run(follow(ws_url, redis_server.url, stop, seen, reconnects)), daemon=True
    )
    subscriber.start()
    time.sleep(1)

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {live_workspace.token}"
    statuses = []
    for step in range(POINTS):
        if step == 20:
            private_redis.stop()
            threading.Timer(OUTAGE_SECONDS, private_redis.start).start()
        # Retry like a real client, so a failed write shows up as a failed status, not as a gap in the stream.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            started = time.monotonic()
            response = session.post(
                f"{redis_server.url}/api/v1/runs/{run_id}/log-batch/",
                json={"metrics": [{"key": "loss", "value": step / 10, "step": step, "timestamp": 1}]},
                timeout=30,
            )
            statuses.append((step, response.status_code, round(time.monotonic() - started, 2), response.text[:200]))
            if response.status_code == 200:
                break
            time.sleep(0.2)
        time.sleep(0.05)
    stop.set()
    subscriber.join(timeout=30)

    assert reconnects, "the subscriber never noticed the Redis outage"
    assert seen, reconnects[:5]
    assert sorted(seen) == list(range(POINTS)), f"missing steps: {sorted(set(range(POINTS)) - set(seen))}"
    assert all(len(values) == 1 for values in seen.values()), "duplicated points"
    assert all(status == 200 for _, status, _, _ in statuses), [s for s in statuses if s[1] != 200][:5]
    slowest = max(seconds for _, _, seconds, _ in statuses)
    assert slowest < 5, f"a write waited {slowest} s on the dead Redis"
