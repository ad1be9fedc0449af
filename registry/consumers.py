"""``/ws/deployments/<id>/``: a deployment's status changes, monitoring points and alerts, live.

Messages are JSON objects ``{"v": 1, "deployment_id", "seq", "kind": "status"|"metrics"|"alert", ...}``.
Every message carries the deployment's ``seq``; a client reconnecting with ``?since=<last seq seen>``
first receives what it missed, rebuilt from the database, then the live stream.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.permissions import Action
from accounts.ws_auth import WS_NOT_FOUND, ws_authorize, ws_subprotocol
from mlplatform.events import deployment_group
from mlplatform.nonfinite import json_safe
from registry.models import Deployment
from registry.selectors import deployment_backlog


def _since(scope: dict[str, Any]) -> int | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("since")
    if not values:
        return None
    try:
        return min(max(int(values[-1]), 0), 2**63 - 1)
    except ValueError:
        return None


@database_sync_to_async
def _load(deployment_id: int) -> Deployment | None:
    return Deployment.objects.select_related("model", "version", "environment").filter(pk=deployment_id).first()


@database_sync_to_async
def _backlog(deployment: Deployment, since: int) -> list[dict[str, Any]]:
    return deployment_backlog(deployment=deployment, since=since)


class DeploymentConsumer(AsyncJsonWebsocketConsumer):
    """Streams one deployment's events to viewers of its team."""

    group: str | None = None

    async def connect(self) -> None:
        """Authorize (viewer role), join the group, accept, then replay anything after ``?since=``."""
        deployment = await _load(int(self.scope["url_route"]["kwargs"]["deployment_id"]))
        if deployment is None:
            await self.close(code=WS_NOT_FOUND)
            return
        code = await ws_authorize(self.scope, Action.READ, deployment)
        if code is not None:
            await self.close(code=code)
            return
        self.group = deployment_group(deployment.pk)
        # Join before reading the backlog so nothing committed in between is lost (duplicates carry a seq).
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept(subprotocol=ws_subprotocol(self.scope))
        since = _since(self.scope)
        if since is not None:
            for message in await _backlog(deployment, since):
                await self.send_json(message)

    async def disconnect(self, code: int) -> None:
        """Leave the group."""
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The stream is one-way; client messages are ignored."""

    async def deployment_event(self, event: dict[str, Any]) -> None:
        """Forward a published deployment event (minus the channel-layer ``type``)."""
        await self.send_json({key: value for key, value in event.items() if key != "type"})

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        """Strict JSON: non-finite floats travel as "NaN", "Infinity", "-Infinity"."""
        return json.dumps(json_safe(content), allow_nan=False)
