"""Django's ASGI handler, with each HTTP request served in one hop onto a worker thread.

Stock ``django.core.handlers.asgi.ASGIHandler`` in front of a sync middleware stack and sync (DRF)
views moves a request between the event loop and threads five times or more: the ``request_started``
receivers, the sync middleware stack, back to the loop for Django's async core, a thread again for the
view, each live-event publish (``async_to_sync``) and ``response.close()``. It also starts a new
thread per request (one ``ThreadSensitiveContext`` executor each). Each hop wakes the loop and hands
the GIL over; on log-metric they cost more than the SQL.

:class:`OneHopASGIHandler` loads the middleware in sync mode, as WSGI does, and runs everything from
``request_started`` to ``request_finished`` in a single call on a fixed pool of worker threads.
Live events published during the request (``mlplatform.events.publish_after_commit``) are collected
and sent from the event loop before the response goes out, so a client that gets its 200 knows the
subscribers have been sent the event, exactly as before. Streaming responses (artifact downloads)
are read chunk by chunk on the worker pool (Django would read a file into memory whole first) and
closed after they are sent.

Only HTTP changes: WebSockets go through Channels as before.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import SyncToAsync
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpResponse
from django.urls import set_script_prefix

from mlplatform.events import collected_events, publish_collected

DEFAULT_THREADS = 20  # the default PostgreSQL pool size (mlplatform/env.py): one connection per busy thread


def worker_threads() -> int:
    """How many requests a process runs at once (``ASGI_THREADS``, default 20)."""
    try:
        return max(1, int(os.environ.get("ASGI_THREADS", DEFAULT_THREADS)))
    except ValueError:
        return DEFAULT_THREADS


class OneHopASGIHandler(ASGIHandler):
    """Serve an HTTP request with the sync middleware stack and view in one worker-thread call."""

    def __init__(self) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self.executor = ThreadPoolExecutor(max_workers=worker_threads(), thread_name_prefix="http")

    def in_thread(self, func: Any) -> SyncToAsync:
        """``func`` as an awaitable running on the worker pool (``async_to_sync`` inside it reaches this loop)."""
        return SyncToAsync(func, thread_sensitive=False, executor=self.executor)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Read the body, respond in one thread call, publish the request's live events, send the response."""
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            with collected_events() as events:
                response = await self.in_thread(self.respond)(scope, body_file)
            await publish_collected(events)
            await self.send_response(response, send)
            if response.streaming:
                await self.in_thread(response.close)()
        finally:
            body_file.close()

    def respond(self, scope: dict[str, Any], body_file: Any) -> HttpResponse:
        """Everything Django does for a request, in this worker thread; closes non-streaming responses."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size
        if not response.streaming:
            response.close()  # content is in memory; request_finished returns the DB connection now
        elif not response.is_async:
            # Django would read a sync iterator (a file download) into memory whole before sending it;
            # read it chunk by chunk on the worker pool instead.
            response.streaming_content = self.chunks_in_thread(response.streaming_content)
        return response

    async def chunks_in_thread(self, iterator: Iterable[bytes]) -> AsyncIterator[bytes]:
        """The chunks of a sync iterator, each read on the worker pool."""
        chunks = iter(iterator)
        read = self.in_thread(next)
        while (chunk := await read(chunks, None)) is not None:
            yield chunk
