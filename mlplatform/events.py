"""Publish live events to Channels groups once the writing transaction commits.

Services call ``publish_after_commit``; a rolled-back write is never announced,
and a channel layer that is down never fails the write that triggered it.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger("mlplatform.events")


def run_group(run_uuid: str) -> str:
    """Group name for one run's subscribers."""
    return f"run.{run_uuid}"


def experiment_group(experiment_id: int) -> str:
    """Group name for one experiment's subscribers."""
    return f"experiment.{experiment_id}"


def deployment_group(deployment_id: int) -> str:
    """Group name for one deployment's subscribers."""
    return f"deployment.{deployment_id}"


def send_now(group: str, message: dict[str, Any]) -> None:
    """Send to a group immediately; failures are logged, never raised to the writer."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception:  # Redis down: the write already committed; clients resync on reconnect
        logger.warning("event publish failed", extra={"group": group}, exc_info=True)


def publish_after_commit(group: str, message: dict[str, Any]) -> None:
    """Send ``message`` to ``group`` after the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: send_now(group, message))
