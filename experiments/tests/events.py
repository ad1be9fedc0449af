"""Listen to live events on the real channel layer in tests."""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from experiments.live import event_of


class GroupListener:
    """A channel subscribed to one group; ``messages()`` drains what arrived."""

    def __init__(self, group: str) -> None:
        self.layer = get_channel_layer()
        self.channel = async_to_sync(self.layer.new_channel)()
        async_to_sync(self.layer.group_add)(group, self.channel)

    def messages(self) -> list[dict[str, Any]]:
        """Every event received so far (as subscribers see it)."""
        received = []
        while True:
            try:
                received.append(event_of(async_to_sync(self._receive_now)()))
            except TimeoutError:
                return received

    async def _receive_now(self) -> dict[str, Any]:
        import asyncio

        return await asyncio.wait_for(self.layer.receive(self.channel), timeout=0.2)
