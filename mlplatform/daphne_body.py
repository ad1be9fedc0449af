"""Request bodies under daphne: served from Twisted's spool file, never held in memory; oversized ones refused.

Stock daphne 4.2.3 keeps every request body in RAM before the application runs. Twisted spools a body of
100 000 bytes or more (or any chunked one) into a ``tempfile.TemporaryFile`` (``twisted.web.http._getContentFile``),
but once the body is complete ``daphne.http_protocol.WebRequest.process`` reads that whole file in
``request_buffer_size`` chunks and ``put_nowait``s every chunk into the application's ``asyncio.Queue``,
synchronously, before the application is even scheduled: a 200 MB upload costs 200 MB of RSS, and any
client, authenticated or not, can make the server allocate what it sends. Twisted makes it worse for a
``multipart/form-data`` or form-encoded POST: ``Request.requestReceived`` reads the whole body and parses it
into ``request.args``, which daphne never uses.

:func:`apply` (called once, idempotently, by ``mlplatform.asgi``, which every launch mode imports before
daphne creates its ``Server``) patches daphne so that:

* **Bounded memory.** ``Server.create_application`` gives an HTTP request whose body lives in a real file a
  :class:`FileBackedBodyQueue`. Its ``put_nowait`` keeps only the byte range of each ``http.request`` message
  (consecutive chunks merge into one range, and daphne's read loop is fast-forwarded to the end of the file
  after the first chunk, so the body is not even read before the application runs); its ``get`` serves the
  range in :data:`BODY_CHUNK_BYTES` chunks with ``os.pread`` (the file position is untouched), yielding to
  the event loop between chunks, then falls through to the ordinary queue (``http.disconnect``). When the
  connection is lost meanwhile, Twisted closes the file and the application gets ``http.disconnect``.
  Small bodies (``BytesIO``) and WebSockets keep daphne's behaviour. Twisted's form parsing is switched off.
* **Early refusal.** A body larger than :func:`body_limit` (the largest body any view accepts plus
  :data:`ENVELOPE_ALLOWANCE_BYTES`) is not spooled at all: a Content-Length over the limit, or a chunked
  body as soon as it crosses it, goes to a :class:`DiscardedBody` sink, and once the body has been received
  (so a client that sends the whole body before reading gets an answer, not a broken pipe) daphne answers
  413 with the API's error envelope, code ``payload_too_large``, without running the application.

The patch replaces daphne's ``Server.create_application`` with a copy written against daphne
:data:`PINNED_DAPHNE_VERSION` (``requirements.txt``); :func:`apply` refuses any other version, so an upgrade
fails loudly (at start-up and in ``tests/test_daphne_body.py``) until this module has been re-checked
against the new source.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import time
from dataclasses import dataclass
from functools import partial
from typing import IO, Any

import daphne
from daphne.http_protocol import WebRequest
from daphne.server import Server
from django.conf import settings
from twisted.web import http

from mlplatform.api import error_body

logger = logging.getLogger("mlplatform.request")

PINNED_DAPHNE_VERSION = "4.2.3"
# The body chunk handed to the application per ``receive()``: memory per request in flight is about this.
BODY_CHUNK_BYTES = 64 * 1024
# Room above the largest accepted payload for what wraps it: multipart boundaries and part headers, or the
# difference between a raw artifact's size and a request that carries it. 1 MiB is far more than an envelope
# needs and far less than anything worth refusing.
ENVELOPE_ALLOWANCE_BYTES = 1024 * 1024
_APPLIED_FLAG = "_mlplatform_bounded_body"

_stock_got_length = http.Request.gotLength
_stock_process = WebRequest.process


class DaphneVersionMismatch(RuntimeError):
    """The installed daphne is not the version this patch was written and tested against."""


def body_limit() -> int | None:
    """The largest request body worth receiving, in bytes, or None for no limit.

    The largest of ``ARTIFACT_MAX_UPLOAD_BYTES`` (raw artifact uploads) and ``DATA_UPLOAD_MAX_MEMORY_SIZE``
    (every other body, ``mlplatform.security.RequestLimitsMiddleware``), plus :data:`ENVELOPE_ALLOWANCE_BYTES`.
    Bodies between a view's own limit and this one still reach Django, which answers its own 413.
    """
    limits = [
        value
        for value in (
            getattr(settings, "ARTIFACT_MAX_UPLOAD_BYTES", None),
            getattr(settings, "DATA_UPLOAD_MAX_MEMORY_SIZE", None),
        )
        if value is not None
    ]
    return max(limits) + ENVELOPE_ALLOWANCE_BYTES if limits else None


class DiscardedBody:
    """Stands in for the spool file of a body over the limit: counts what arrives, keeps nothing.

    ``tell`` answers 0 so Twisted's ``requestReceived`` sees an empty body (it never parses or reads it).
    """

    def __init__(self, limit: int, *, declared: int | None = None, received: int = 0) -> None:
        self.limit = limit
        self.declared = declared
        self.received = received
        self.closed = False

    def write(self, data: bytes) -> int:
        """Count the bytes and drop them."""
        self.received += len(data)
        return len(data)

    def tell(self) -> int:
        """Always 0: there is nothing to read back."""
        return 0

    def seek(self, offset: int, whence: int = 0) -> int:
        """Nothing to move over."""
        return 0

    def read(self, size: int = -1) -> bytes:
        """Nothing was kept."""
        return b""

    def close(self) -> None:
        """Mark closed, like a file."""
        self.closed = True


@dataclass
class _BodyRange:
    """The bytes ``[start, end)`` of the spool file, served from ``pos``; ``more_body`` once they are done."""

    start: int
    end: int
    more_body: bool
    pos: int = -1

    def __post_init__(self) -> None:
        if self.pos < 0:
            self.pos = self.start


class FileBackedBodyQueue(asyncio.Queue):
    """The application's input queue for a request whose body is spooled in a file: no body bytes kept.

    ``put_nowait`` of an ``http.request`` message records its byte range in ``content`` (the offset is
    ``content.tell() - len(body)`` at put time) instead of the message; ``get``/``get_nowait`` turn a
    range back into ``http.request`` messages of at most ``chunk_size`` bytes read with ``os.pread``.
    Other messages (``http.disconnect``) pass through in order.
    """

    def __init__(self, content: IO[bytes], chunk_size: int = BODY_CHUNK_BYTES) -> None:
        super().__init__()
        self._content = content
        self._chunk_size = chunk_size
        self._tail: _BodyRange | None = None  # the last range queued, while later chunks may still extend it
        self._current: _BodyRange | None = None  # the range being served

    def put_nowait(self, item: Any) -> None:
        """Queue ``item``; an ``http.request`` message becomes (or extends) a byte range of the spool file."""
        if not (isinstance(item, dict) and item.get("type") == "http.request") or self._content.closed:
            super().put_nowait(item)
            return
        body = item.get("body", b"")
        more_body = bool(item.get("more_body", False))
        end = self._content.tell()
        start = end - len(body)
        if more_body:
            # The body is complete when daphne hands it over: take the rest of the file as one range and move
            # daphne's read loop to the end, so its next read is empty and it stops without reading the file.
            self._content.flush()
            end = self._content.seek(0, os.SEEK_END)
        tail = self._tail
        if tail is not None and tail.more_body and tail.end == start:
            tail.end = end
            tail.more_body = more_body
            return
        self._tail = _BodyRange(start=start, end=end, more_body=more_body)
        super().put_nowait(self._tail)

    def get_nowait(self) -> Any:
        """The next message: the next chunk of the range being served, else the next queued item."""
        if self._current is None:
            item = super().get_nowait()
            if not isinstance(item, _BodyRange):
                return item
            self._current = item
        return self._next_chunk(self._current)

    async def get(self) -> Any:
        """Wait for the next message; between two chunks of a body, let the event loop run."""
        if self._current is not None:
            await asyncio.sleep(0)
            if self._current is not None:
                return self.get_nowait()
        return await super().get()

    def _next_chunk(self, current: _BodyRange) -> dict[str, Any]:
        if self._content.closed:  # the connection was lost (or the response finished): Twisted closed the file
            self._current = self._tail = None
            return {"type": "http.disconnect"}
        wanted = min(self._chunk_size, current.end - current.pos)
        data = os.pread(self._content.fileno(), wanted, current.pos) if wanted > 0 else b""
        if len(data) < wanted:  # the spool file is shorter than what daphne handed over: cannot happen
            logger.error("request body spool file truncated at %d of %d bytes", current.pos + len(data), current.end)
            self._current = self._tail = None
            return {"type": "http.disconnect"}
        current.pos += len(data)
        if current.pos < current.end:
            return {"type": "http.request", "body": data, "more_body": True}
        self._current = None
        if self._tail is current:
            self._tail = None
        return {"type": "http.request", "body": data, "more_body": current.more_body}


def _is_spool_file(content: Any) -> bool:
    """Whether ``content`` is a real, open file (Twisted's ``TemporaryFile``), not ``BytesIO`` or a sink."""
    if content is None or isinstance(content, (io.BytesIO, DiscardedBody)) or getattr(content, "closed", True):
        return False
    try:
        content.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def input_queue_for(protocol: Any, scope: dict[str, Any]) -> asyncio.Queue:
    """A :class:`FileBackedBodyQueue` for an HTTP request spooled to a file, else daphne's plain queue."""
    content = getattr(protocol, "content", None)
    if scope.get("type") == "http" and _is_spool_file(content):
        return FileBackedBodyQueue(content)
    return asyncio.Queue()


def create_application(self: Server, protocol: Any, scope: dict[str, Any]) -> asyncio.Queue | None:
    """daphne 4.2.3's ``Server.create_application``, with :func:`input_queue_for` choosing the queue."""
    # Make sure the protocol has not had another application made for it
    assert "application_instance" not in self.connections[protocol]
    input_queue = input_queue_for(protocol, scope)
    scope.setdefault("asgi", {"version": "3.0"})
    application_instance = self.application(
        scope=scope,
        receive=input_queue.get,
        send=partial(self.handle_reply, protocol),
    )
    if protocol not in self.connections:
        return None
    self.connections[protocol]["application_instance"] = asyncio.ensure_future(
        application_instance,
        loop=asyncio.get_event_loop(),
    )
    return input_queue


def got_length(self: WebRequest, length: int | None) -> None:
    """Choose where the body goes: a sink when the declared length is over :func:`body_limit`, else Twisted's."""
    # daphne never reads request.args; Twisted would read a whole form POST into memory to fill them.
    self._parsePOSTFormSubmission = False
    limit = body_limit()
    self._mlplatform_body_limit = limit
    self._mlplatform_body_received = 0
    if limit is not None and length is not None and length > limit:
        self.content = DiscardedBody(limit, declared=length)
        return
    _stock_got_length(self, length)


def handle_content_chunk(self: WebRequest, data: bytes) -> None:
    """Write a body chunk; a (chunked) body that grows past the limit drops its spool file for a sink."""
    content = self.content
    if isinstance(content, DiscardedBody):
        content.write(data)
        return
    received = getattr(self, "_mlplatform_body_received", 0) + len(data)
    self._mlplatform_body_received = received
    limit = getattr(self, "_mlplatform_body_limit", None)
    if limit is not None and received > limit:
        content.close()  # a TemporaryFile: gone with its data
        self.content = DiscardedBody(limit, received=received)
        return
    content.write(data)


def process(self: WebRequest) -> Any:
    """Answer 413 for a discarded body; anything else goes through daphne's ``process``."""
    if isinstance(self.content, DiscardedBody):
        refuse_oversized(self, self.content)
        return None
    return _stock_process(self)


def refuse_oversized(request: WebRequest, sink: DiscardedBody) -> None:
    """Send the 413 envelope for a body that was discarded, without creating an application."""
    request.request_start = time.time()
    if hasattr(request.client, "host") and hasattr(request.client, "port"):
        request.client_addr = [str(request.client.host), request.client.port]
    size = sink.declared if sink.declared is not None else sink.received
    if sink.declared is not None:
        message = f"The request body is {size} bytes, over the limit of {sink.limit} bytes."
    else:
        message = f"The request body is over the limit of {sink.limit} bytes."
    body = json.dumps(error_body("payload_too_large", message, {"limit_bytes": sink.limit})).encode()
    logger.warning(
        "request body refused",
        extra={
            "method": request.method.decode("ascii", "replace"),
            "path": (request.path or b"").decode("ascii", "replace"),
            "status": 413,
            "body_bytes": size,
        },
    )
    request.handle_reply(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    request.handle_reply({"type": "http.response.body", "body": body})


def check_versions() -> None:
    """Refuse a daphne other than :data:`PINNED_DAPHNE_VERSION`, or a Twisted without the hooks used here."""
    if daphne.__version__ != PINNED_DAPHNE_VERSION:
        raise DaphneVersionMismatch(
            f"mlplatform.daphne_body patches daphne {PINNED_DAPHNE_VERSION}, but daphne {daphne.__version__} is "
            "installed: compare daphne's Server.create_application and WebRequest.process with "
            "mlplatform/daphne_body.py, then update PINNED_DAPHNE_VERSION (and requirements.txt)."
        )
    if not hasattr(http, "_getContentFile") or "_parsePOSTFormSubmission" not in http.Request.__annotations__:
        raise DaphneVersionMismatch(
            "twisted.web.http no longer has the request body hooks mlplatform.daphne_body uses."
        )


def is_applied() -> bool:
    """Whether :func:`apply` has patched daphne in this process."""
    return bool(getattr(Server, _APPLIED_FLAG, False))


def apply() -> None:
    """Patch daphne (once per process; later calls do nothing)."""
    if is_applied():
        return
    check_versions()
    Server.create_application = create_application
    WebRequest.gotLength = got_length
    WebRequest.handleContentChunk = handle_content_chunk
    WebRequest.process = process
    setattr(Server, _APPLIED_FLAG, True)
