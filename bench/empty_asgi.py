"""An ASGI app that answers every HTTP request with a fixed 2-byte JSON body: the floor under daphne.

The issue quotes ~1.2 ms p50 for it on an idle machine; each benchmark run measures it first
(``calibration`` in the result JSON), so numbers from a loaded, shared machine can be read against it.
"""

from __future__ import annotations

from typing import Any


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer ``{}`` to any HTTP request; ignore lifespan events."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})
