"""A small HTTP/1.1 load driver on ``http.client``: one connection per client, keep-alive or not.

Kept deliberately thin (no third-party client) so the client's own overhead stays small and
predictable next to the sub-millisecond latencies being measured. Request bodies are serialised
before the clock starts; the clock covers send, server time and reading the whole response.
"""

from __future__ import annotations

import http.client
import math
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson


class BenchError(RuntimeError):
    """A request the benchmark needed failed (non-2xx answer or a broken connection)."""


@dataclass
class Response:
    """One answered request."""

    status: int
    body: bytes
    seconds: float

    def json(self) -> Any:
        """The body parsed as JSON."""
        return orjson.loads(self.body) if self.body else {}


class Client:
    """One HTTP client: with ``keepalive`` it reuses one connection, otherwise it opens one per request."""

    def __init__(
        self, base_url: str, headers: Mapping[str, str] | None = None, *, keepalive: bool = True, timeout: float = 120
    ) -> None:
        parts = urlsplit(base_url)
        if parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
            raise BenchError(f"benchmarks only target this machine's loopback address, not {parts.hostname!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.keepalive = keepalive
        self.timeout = timeout
        self.headers = {"Accept": "application/json", **(headers or {})}
        if not keepalive:
            self.headers["Connection"] = "close"
        self._conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        conn.connect()
        # Like requests/urllib3 (the mlflow client): no Nagle on the client side.
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def close(self) -> None:
        """Close the kept-alive connection, if any."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        body: bytes | None = None,
        check: bool = True,
    ) -> Response:
        """Send one request and read the whole answer; raise BenchError on a non-2xx status when ``check``."""
        if query:
            path = f"{path}?{urlencode(query, doseq=True)}"
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            started = time.perf_counter()
            conn = self._conn if self.keepalive and self._conn is not None else self._connect()
            try:
                conn.request(method, path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
            except (http.client.HTTPException, ConnectionResetError, BrokenPipeError) as exc:
                conn.close()
                self._conn = None
                # A server may close an idle kept-alive connection; retry once on a fresh one.
                if attempt == 2 or not self.keepalive:
                    raise BenchError(f"{method} {path}: connection failed: {exc}") from exc
                continue
            seconds = time.perf_counter() - started
            if self.keepalive and not answer.will_close:
                self._conn = conn
            else:
                conn.close()
                self._conn = None
            if check and not 200 <= answer.status < 300:
                raise BenchError(f"{method} {path} -> {answer.status}: {data[:500]!r}")
            return Response(status=answer.status, body=data, seconds=seconds)
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, path: str, query: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None) -> Response:
        """GET a path."""
        return self.request("GET", path, query=query)

    def post(self, path: str, payload: Any = None, *, body: bytes | None = None) -> Response:
        """POST a JSON payload (or pre-serialised ``body``)."""
        return self.request("POST", path, body=body if body is not None else orjson.dumps(payload))


@dataclass
class Stats:
    """Latency samples in seconds, summarised in milliseconds."""

    samples: list[float] = field(default_factory=list)
    cpu_ms: float | None = None  # server CPU per sample, when the server's process is known

    def add(self, seconds: float) -> None:
        """Record one sample."""
        self.samples.append(seconds)

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile in milliseconds (0 when empty)."""
        if not self.samples:
            return 0.0
        ordered = sorted(self.samples)
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        return ordered[rank - 1] * 1000

    def summary(self) -> dict[str, float]:
        """n, p50, p90, p99, max and mean in milliseconds."""
        n = len(self.samples)
        return {
            "n": n,
            "p50_ms": round(self.percentile(50), 3),
            "p90_ms": round(self.percentile(90), 3),
            "p99_ms": round(self.percentile(99), 3),
            "max_ms": round(max(self.samples) * 1000, 3) if n else 0.0,
            "mean_ms": round(sum(self.samples) / n * 1000, 3) if n else 0.0,
            "server_cpu_ms": None if self.cpu_ms is None else round(self.cpu_ms, 3),
        }


def run_parallel(workers: int, job: Callable[[int], Any]) -> tuple[list[Any], float]:
    """Run ``job(i)`` for i in range(workers) on threads started together; return results and wall seconds.

    The first exception raised by any worker is re-raised after all have stopped.
    """
    results: list[Any] = [None] * workers
    errors: list[BaseException] = []
    barrier = threading.Barrier(workers + 1)

    def target(index: int) -> None:
        barrier.wait()
        try:
            results[index] = job(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        raise errors[0]
    return results, wall
