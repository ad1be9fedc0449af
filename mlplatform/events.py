"""Publish live events to Channels groups once the writing transaction commits.

Services call ``publish_after_commit``; a rolled-back write is never announced,
and a channel layer that is down never fails the write that triggered it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger("mlplatform.events")

Event = tuple[str, dict[str, Any]]

# Set by the HTTP handler (mlplatform/asgi_http.py) for the length of a request: committed events are
# queued here and sent from the event loop, instead of one thread-to-loop hop per event.
_collecting: ContextVar[list[Event] | None] = ContextVar("mlplatform_collected_events", default=None)


def run_group(run_uuid: str) -> str:
    """Group name for one run's subscribers."""
    return f"run.{run_uuid}"


def experiment_group(experiment_id: int) -> str:
    """Group name for one experiment's subscribers."""
    return f"experiment.{experiment_id}"


def deployment_group(deployment_id: int) -> str:
    """Group name for one deployment's subscribers."""
    return f"deployment.{deployment_id}"


async def _send_logged(layer: Any, group: str, message: dict[str, Any]) -> None:
    """Send to a group; failures are logged, never raised to the writer."""
    try:
        await layer.group_send(group, message)
    except Exception:  # Redis down: the write already committed; clients resync on reconnect
        logger.warning("event publish failed", extra={"group": group}, exc_info=True)


def send_now(group: str, message: dict[str, Any]) -> None:
    """Send to a group immediately; failures are logged, never raised to the writer."""
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(_send_logged)(layer, group, message)


def publish(group: str, message: dict[str, Any]) -> None:
    """Queue the event for the request being served, or send it now outside a request."""
    queue = _collecting.get()
    if queue is None:
        send_now(group, message)
    else:
        queue.append((group, message))


def publish_after_commit(group: str, message: dict[str, Any]) -> None:
    """Send ``message`` to ``group`` after the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: publish(group, message))


@contextmanager
def collected_events() -> Iterator[list[Event]]:
    """Collect the events committed in this context (and the threads it calls) instead of sending them."""
    queue: list[Event] = []
    token = _collecting.set(queue)
    try:
        yield queue
    finally:
        _collecting.reset(token)


async def publish_collected(events: list[Event]) -> None:
    """Send collected events from the event loop, in order; failures are logged, never raised."""
    if not events:
        return
    layer = get_channel_layer()
    if layer is None:
        return
    for group, message in events:
        await _send_logged(layer, group, message)
