"""Live streams: ``/ws/runs/<run_uuid>/`` (one run) and ``/ws/experiments/<id>/`` (an experiment's run table).

The wire protocol (message types, resume with ``?since=``, resync, heartbeat, close codes) is documented in
``docs/streaming.md``. The services publish one ``run.event`` per committed write (``experiments.live``);
these consumers only authorize, catch up from the database and forward.

Ordering rule for ``RunConsumer``: join the run's group *before* reading the catch-up from the database.
A consumer handles one message at a time, so live events published while the catch-up is read wait in the
consumer's channel (the buffer, bounded by the layer's capacity) and are dispatched afterwards; those with a
``seq`` the catch-up already covered are dropped. Every event committed after the database read was published
after the join, so nothing falls between the two.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from typing import Any
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from accounts.permissions import Action
from accounts.ws_auth import WS_FORBIDDEN, WS_NOT_FOUND, WS_UNAUTHENTICATED, ws_authorize, ws_subprotocol
from experiments import selectors
from experiments.limits import MAX_METRICS_PER_BATCH
from experiments.live import EVENT_VERSION, TEXT_KEY
from experiments.models import Experiment, Run
from mlplatform.errors import Forbidden, NotFound
from mlplatform.events import experiment_group, run_group
from mlplatform.nonfinite import json_safe

logger = logging.getLogger("mlplatform.streaming")

WS_BAD_REQUEST = 4400
WS_IDLE = 4408
DEFAULT_PING_INTERVAL = 20.0
DEFAULT_IDLE_TIMEOUT = 60.0
DEFAULT_CATCHUP_POINTS = 10_000
# Runs whose sequence an experiment stream remembers for gap detection (least recently updated dropped first).
MAX_TRACKED_RUNS = 10_000


def query_param(scope: dict[str, Any], name: str) -> str | None:
    """The last value of a query-string parameter, or None."""
    values = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True).get(name)
    return values[-1] if values else None


def parse_since(raw: Any) -> int | None:
    """A resume point: a non-negative integer (int or digit string); None when invalid."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if raw >= 0 else None
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 18:
        return int(raw)
    return None


def _lookup_code(exc: Exception) -> int:
    return WS_NOT_FOUND if isinstance(exc, NotFound) else WS_FORBIDDEN


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Shared behaviour: authorize like HTTP, strict JSON, client errors as messages, heartbeat and idle close."""

    group: str | None = None
    target: Run | Experiment | None = None
    closing: bool = False
    heartbeat: asyncio.Task | None = None

    async def connect(self) -> None:
        """Authenticate (4401), join the group, look the object up and authorize it (4404/4403), then subscribe."""
        self.last_activity = asyncio.get_running_loop().time()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(WS_UNAUTHENTICATED)
            return
        group = self.group_name()
        if group is None:
            await self.refuse(WS_NOT_FOUND)
            return
        self.group = group
        await self.channel_layer.group_add(group, self.channel_name)
        try:
            self.target = await database_sync_to_async(self.load)(user)
        except (NotFound, Forbidden) as exc:
            await self.refuse(_lookup_code(exc))
            return
        await self.accept(subprotocol=ws_subprotocol(self.scope))
        self.heartbeat = asyncio.create_task(self.beat())
        await self.subscribed()

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Call the message's handler without Channels' per-message ``aclose_old_connections``.

        Channels hops onto the process's single sync thread before every message to close stale database
        connections. A live event does no database work, and every database call here goes through
        ``database_sync_to_async``, which closes stale connections itself; the hop only queued
        (subscribers x events per second) no-op jobs in front of the HTTP views sharing that thread,
        which doubled the write latency at 100 subscribers.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def refuse(self, code: int) -> None:
        """Accept then close with ``code``: a close before the handshake reaches a browser only as 1006."""
        await self.leave_group()
        self.closing = True
        await self.accept(subprotocol=ws_subprotocol(self.scope))
        await self.close(code=code)

    async def leave_group(self) -> None:
        """Stop receiving the group's events."""
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None

    async def disconnect(self, code: int) -> None:
        """Leave the group and stop the heartbeat."""
        self.closing = True
        if self.heartbeat is not None:
            self.heartbeat.cancel()
            await asyncio.gather(self.heartbeat, return_exceptions=True)
        await self.leave_group()

    async def shut(self, code: int) -> None:
        """Close the connection once; nothing is sent after it."""
        if self.closing:
            return
        self.closing = True
        await self.leave_group()
        await self.close(code=code)

    async def send_json(self, content: Any, close: bool = False) -> None:
        """Send unless the connection is closing."""
        if not self.closing:
            await super().send_json(content, close=close)

    async def forward(self, event: dict[str, Any]) -> None:
        """Send a live event: its pre-encoded text when the publisher attached one, else the event encoded."""
        text = event.get(TEXT_KEY)
        if not isinstance(text, str):
            await self.send_json(event)
        elif not self.closing:
            await self.send(text_data=text)

    async def beat(self) -> None:
        """Every ping interval: close an idle connection, re-check access, else send a ping."""
        interval = float(getattr(settings, "WS_PING_INTERVAL", DEFAULT_PING_INTERVAL))
        idle_timeout = float(getattr(settings, "WS_IDLE_TIMEOUT", DEFAULT_IDLE_TIMEOUT))
        loop = asyncio.get_running_loop()
        while not self.closing:
            await asyncio.sleep(interval)
            if loop.time() - self.last_activity > idle_timeout:
                await self.shut(WS_IDLE)
                return
            # A long-lived socket must notice that its user lost access (removed from the team, deactivated).
            try:
                code = await ws_authorize(self.scope, Action.READ, self.target)
            except Exception:  # database briefly unavailable: keep the stream, check again next beat
                logger.warning("live stream access re-check failed", exc_info=True)
                code = None
            if code is not None:
                await self.shut(code)
                return
            await self.send_json({"type": "ping", "v": EVENT_VERSION})

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        """Decode a client frame; malformed input is answered with an error message, never a crash."""
        self.last_activity = asyncio.get_running_loop().time()
        if text_data is None:
            await self.client_error("Frames must be JSON text, not binary.")
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self.client_error("Frames must be valid JSON.")
            return
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            await self.client_error('Frames must be JSON objects with a string "type".')
            return
        await self.receive_json(content)

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        """Answer client pings; pongs only keep the connection alive; anything else is handled by ``command``."""
        kind = content["type"]
        if kind == "pong":
            return
        if kind == "ping":
            await self.send_json({"type": "pong", "v": EVENT_VERSION})
            return
        await self.command(kind, content)

    async def command(self, kind: str, content: dict[str, Any]) -> None:
        """Handle a client command; the base class knows none."""
        await self.client_error(f"Unknown message type {kind!r}.")

    async def client_error(self, message: str) -> None:
        """Tell the client its frame was refused (the connection stays open)."""
        await self.send_json({"type": "error", "v": EVENT_VERSION, "code": "invalid_input", "message": message})

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        """Strict JSON: non-finite floats travel as "NaN", "Infinity", "-Infinity" (JSON has no NaN)."""
        try:
            return json.dumps(content, allow_nan=False, separators=(",", ":"))
        except ValueError:
            return json.dumps(json_safe(content), allow_nan=False, separators=(",", ":"))

    def group_name(self) -> str | None:
        """The group to join, or None when the URL cannot name an object."""
        raise NotImplementedError

    def load(self, user: Any) -> Run | Experiment:
        """The object, authorized for READ (raises NotFound/Forbidden)."""
        raise NotImplementedError

    async def subscribed(self) -> None:
        """Send what a new subscriber needs first."""
        raise NotImplementedError


class RunConsumer(LiveConsumer):
    """One run's live stream, resumable with ``?since=<seq>`` without gaps or duplicates."""

    last_seq: int = 0
    paused: bool = False

    def group_name(self) -> str | None:
        """``run.<uuid>``; a malformed id names no run."""
        run_uuid = self.scope["url_route"]["kwargs"]["run_uuid"]
        if not selectors.RUN_UUID_RE.match(run_uuid):
            return None
        return run_group(run_uuid)

    def load(self, user: Any) -> Run:
        """The run, checked for READ."""
        return selectors.run_get(user=user, run_uuid=self.scope["url_route"]["kwargs"]["run_uuid"])

    async def subscribed(self) -> None:
        """Catch up from ``?since=`` (or from now when absent), then go live."""
        raw = query_param(self.scope, "since")
        since = None if raw is None else parse_since(raw)
        if raw is not None and since is None:
            await self.client_error("since must be a non-negative integer.")
            await self.shut(WS_BAD_REQUEST)
            return
        await self.catch_up(since)

    async def catch_up(self, since: int | None) -> None:
        """Send ``catchup`` messages for everything after ``since``; the last has ``more: false``.

        Without ``since`` it sends one empty ``catchup`` carrying the run's current ``seq`` and state.
        """
        run = self.target
        limit = max(int(getattr(settings, "WS_CATCHUP_POINTS", DEFAULT_CATCHUP_POINTS)), MAX_METRICS_PER_BATCH)
        # The run was loaded after joining the group: every event with a higher seq reaches this consumer.
        seq = run.last_seq if since is None else since
        while True:
            # A chunk holds at least one whole batch (a batch has ≤ MAX_METRICS_PER_BATCH points), so seq advances.
            chunk = await database_sync_to_async(selectors.run_events_since)(run, seq, max_points=limit)
            more = bool(chunk.pop("truncated"))
            await self.send_json({"type": "catchup", "v": EVENT_VERSION, "from_seq": seq, **chunk, "more": more})
            seq = chunk["seq"]
            if not more:
                break
        self.last_seq = seq
        self.paused = False

    async def command(self, kind: str, content: dict[str, Any]) -> None:
        """``{"type": "resume", "since": n}`` replays from ``n`` (what a client sends after ``resync``)."""
        if kind != "resume":
            await super().command(kind, content)
            return
        since = parse_since(content.get("since"))
        if since is None:
            await self.client_error("resume needs since: a non-negative integer.")
            return
        await self.catch_up(since)

    async def run_event(self, event: dict[str, Any]) -> None:
        """Forward the next event in sequence; drop repeats; on a jump ask the client to resync."""
        if self.paused or self.closing:
            return
        seq = event.get("seq", 0)
        if seq <= self.last_seq:
            return  # already sent by the catch-up (or reordered behind a later one)
        if seq > self.last_seq + 1:
            # Events were lost (full channel) or reordered: stop forwarding until the client resumes.
            self.paused = True
            await self.send_json(
                {"type": "resync", "v": EVENT_VERSION, "run_id": event.get("run_id"), "from_seq": self.last_seq}
            )
            return
        self.last_seq = seq
        await self.forward(event)


class ExperimentConsumer(LiveConsumer):
    """An experiment's run table, live: runs created, updated, finished and their latest metrics."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.experiment_id = 0
        self.run_seqs: OrderedDict[str, int] = OrderedDict()

    def group_name(self) -> str | None:
        """``experiment.<id>``; a non-numeric id names no experiment."""
        raw = self.scope["url_route"]["kwargs"]["experiment_id"]
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
            return None
        self.experiment_id = int(raw)
        return experiment_group(self.experiment_id)

    def load(self, user: Any) -> Experiment:
        """The experiment, checked for READ."""
        return selectors.experiment_get(user=user, experiment_id=self.experiment_id)

    async def subscribed(self) -> None:
        """Say the subscription is live; the client then (re)loads the run table over HTTP."""
        await self.send_json({"type": "subscribed", "v": EVENT_VERSION, "experiment_id": self.experiment_id})

    async def run_event(self, event: dict[str, Any]) -> None:
        """Forward a run's compact event; a jump in that run's seq asks the client to reload the run."""
        if self.closing:
            return
        run_id, seq = event.get("run_id"), event.get("seq", 0)
        seen = self.run_seqs.get(run_id)
        if seen is not None and seq <= seen:
            return
        self.run_seqs[run_id] = seq
        self.run_seqs.move_to_end(run_id)
        if len(self.run_seqs) > MAX_TRACKED_RUNS:
            self.run_seqs.popitem(last=False)
        if seen is not None and seq > seen + 1:
            await self.send_json({"type": "resync", "v": EVENT_VERSION, "run_id": run_id, "from_seq": seen})
        await self.forward(event)
