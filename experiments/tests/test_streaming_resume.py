"""Reconnect-with-resume is gap-free: a writer logs continuously while clients connect, drop and resume."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection

from accounts.services import api_token_create
from accounts.ws_auth import WebSocketAuthMiddleware
from experiments import services
from experiments.models import Run
from experiments.tests.factories import ExperimentFactory, RunFactory
from mlplatform.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

app = WebSocketAuthMiddleware(URLRouter(websocket_urlpatterns))
BATCHES = 150
POINTS_PER_BATCH = 4


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """A new layer per test: the in-memory layer's queues belong to one event loop."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def run(team) -> Run:
    return RunFactory(experiment=ExperimentFactory(team=team), last_seq=1)


RECONNECTS = 5


def write_continuously(user: Any, run: Run, done: list[int], clients: list[Any] = ()) -> None:
    """Log BATCHES batches from a thread of its own (its own database connection).

    Every BATCHES // RECONNECTS batches it waits (bounded) until each client has connected once more,
    so reconnects really happen while it writes, however fast the database or slow the machine.
    """
    try:
        for batch in range(BATCHES):
            if batch % (BATCHES // RECONNECTS) == 0:
                wanted = batch // (BATCHES // RECONNECTS) + 1
                deadline = time.monotonic() + 20
                while any(c.connections < wanted for c in clients) and time.monotonic() < deadline:
                    time.sleep(0.01)
            first = batch * POINTS_PER_BATCH
            metrics = [
                {"key": "loss", "value": step / 10, "step": step} for step in range(first, first + POINTS_PER_BATCH)
            ]
            done.append(services.log_batch(user=user, run=run, metrics=metrics))
    finally:
        connection.close()


class Client:
    """A subscriber that drops its connection at random moments and resumes from the last seq it saw."""

    def __init__(self, run: Run, token: str, *, since: int | None, seed: int) -> None:
        self.run, self.token, self.since = run, token, since
        self.random = random.Random(seed)
        self.steps: list[int] = []
        self.connections = 0
        self.resyncs = 0

    async def follow(self, final_seq: asyncio.Future[int]) -> None:
        """Connect/receive/disconnect until the writer is done and everything up to its last seq arrived."""
        while not (final_seq.done() and self.since == final_seq.result()):
            query = f"token={self.token}" + ("" if self.since is None else f"&since={self.since}")
            communicator = WebsocketCommunicator(app, f"/ws/runs/{self.run.run_uuid}/?{query}")
            connected, _ = await communicator.connect(timeout=10)
            assert connected
            self.connections += 1
            await self.receive_for(communicator, self.random.uniform(0.01, 0.15))
            await communicator.disconnect(timeout=10)

    async def receive_for(self, communicator: WebsocketCommunicator, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            if await communicator.receive_nothing(0.005, interval=0.002):
                continue
            message = json.loads(await communicator.receive_from(5))
            self.handle(message)
            if message["type"] == "resync":
                # The documented client reaction: resume on the same socket from the last seq it has.
                await communicator.send_json_to({"type": "resume", "since": self.since})

    def handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "catchup":
            assert self.since is None or message["from_seq"] == self.since
            self.since = message["seq"]
        elif kind == "run.event":
            assert message["seq"] == self.since + 1, "live events must continue the catch-up without a gap"
            self.since = message["seq"]
        elif kind == "resync":
            assert message["from_seq"] == self.since
            self.resyncs += 1
            return
        else:
            return
        self.steps.extend(point[0] for point in message["metrics"].get("loss", []))


async def test_every_step_arrives_exactly_once_across_reconnects(run, editor):
    token = await database_sync_to_async(lambda: api_token_create(user=editor, name="ws")[1])()
    loop = asyncio.get_running_loop()
    final_seq: asyncio.Future[int] = loop.create_future()
    seqs: list[int] = []
    resuming = [Client(run, token, since=1, seed=seed) for seed in range(3)]
    late = Client(run, token, since=None, seed=99)  # joins mid-stream with no history: live from its first seq

    async def writer() -> None:
        await sync_to_async(write_continuously, thread_sensitive=False)(editor, run, seqs, resuming)
        final_seq.set_result(seqs[-1])

    async def join_late() -> None:
        while len(seqs) < 10:  # mid-stream: after the writer has logged some batches
            await asyncio.sleep(0.01)
        await late.follow(final_seq)

    await asyncio.wait_for(
        asyncio.gather(writer(), join_late(), *(client.follow(final_seq) for client in resuming)), timeout=120
    )

    total = BATCHES * POINTS_PER_BATCH
    in_memory_layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("InMemoryChannelLayer")
    assert seqs == list(range(2, BATCHES + 2))
    for client in resuming:
        assert client.connections >= RECONNECTS, "the test must actually reconnect while the writer is logging"
        missing = sorted(set(range(total)) - set(client.steps))[:10]
        repeated = len(client.steps) - len(set(client.steps))
        assert client.steps == list(range(total)), f"missing {missing}, {repeated} repeated"
        if in_memory_layer:
            # One process, no shared queue: nothing can be dropped, so a resync would be a bug. On Redis
            # every consumer of a process shares one bounded queue; a loaded machine may overflow it,
            # and the resync + resume above must then still deliver every point exactly once.
            assert client.resyncs == 0, "a single in-order writer must never cause a resync in memory"
    assert late.steps, "the late client must see live points"
    assert late.steps == list(range(late.steps[0], total))
    assert late.steps[0] > 0
    if in_memory_layer:
        assert late.resyncs == 0
