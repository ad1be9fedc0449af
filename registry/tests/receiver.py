"""A real local HTTP receiver for webhook tests: records every POST, answers scripted statuses.

With ``secret`` set it also does what a production receiver does: it checks ``X-Mlplatform-Signature``
(``t=<unix>,v1=<hex HMAC-SHA256 of "<t>." + body>``) itself, with its own code rather than the server's
``verify_signature``, and answers 401 to a delivery that does not verify or is more than 5 minutes old.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request the receiver got."""

    headers: dict[str, str]
    body: bytes
    verified: bool | None = None  # None: the receiver had no secret to check with

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers ``statuses`` in order (then 200), a 3xx with ``location``; ``gate`` blocks each answer until released."""

    url: str
    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    gate: threading.Event | None = None
    arrived: threading.Event = field(default_factory=threading.Event)
    secret: str | None = None
    location: str | None = None  # sent as ``Location`` with 3xx statuses

    def stop(self) -> None:
        if self.gate is not None:
            self.gate.set()
        self.server.shutdown()
        self.server.server_close()


def signature_ok(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    """The receiver's own check of a delivery's signature header."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp, given = int(fields["t"]), fields["v1"]
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


def start_receiver() -> Receiver:
    """Start a receiver on a free port of 127.0.0.1 in a background thread."""
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = holder["r"]
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            verified = None
            if receiver.secret is not None:
                verified = signature_ok(receiver.secret, body, self.headers.get("X-Mlplatform-Signature", ""))
            receiver.requests.append(Received(headers=dict(self.headers.items()), body=body, verified=verified))
            receiver.arrived.set()
            if receiver.gate is not None:
                receiver.gate.wait(timeout=30)
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            if verified is False:
                status = 401
            self.send_response(status)
            if 300 <= status < 400 and receiver.location:
                self.send_header("Location", receiver.location)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 400 else b"receiver says no")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook", server=server)
    holder["r"] = receiver
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return receiver
