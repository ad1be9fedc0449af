"""Liveness/readiness probe: is the database and the channel layer answering?"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger("mlplatform.health")
CHANNEL_LAYER_TIMEOUT_S = 2.0


def database_ok() -> bool:
    """Run ``SELECT 1`` on the default database."""
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:  # any driver error means "not ready"
        logger.warning("health: database check failed", exc_info=True)
        return False


async def _channel_layer_roundtrip() -> bool:
    layer = get_channel_layer()
    if layer is None:
        return False
    channel = await layer.new_channel("health.")
    await layer.send(channel, {"type": "health.ping"})
    message = await asyncio.wait_for(layer.receive(channel), timeout=CHANNEL_LAYER_TIMEOUT_S)
    return message.get("type") == "health.ping"


def channel_layer_ok() -> bool:
    """Send a message to a fresh channel and read it back."""
    try:
        return async_to_sync(_channel_layer_roundtrip)()
    except Exception:  # connection refused, timeout: not ready
        logger.warning("health: channel layer check failed", exc_info=True)
        return False


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 with component states when everything answers, 503 otherwise."""
    database = database_ok()
    channel_layer = channel_layer_ok()
    healthy = database and channel_layer
    body = {
        "status": "ok" if healthy else "unavailable",
        "database": "ok" if database else "unavailable",
        "channel_layer": "ok" if channel_layer else "unavailable",
        "version": settings.VERSION,
    }
    return JsonResponse(body, status=200 if healthy else 503)
