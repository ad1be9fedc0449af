"""WebSocket fan-out latency: N subscribers on one run, one writer logging batches over HTTP.

Measures, for every batch and every subscriber, the time from the start of the writer's ``log-batch``
request to the arrival of the matching ``run.event`` on the subscriber's socket (same clock: one
machine, loopback only). Prints p50/p99/max and delivered messages/s as a table and writes JSON to
``bench/results/``. Bounded in time by ``--timeout``.

Start its own daphne on ``$DATABASE_URL`` / ``$REDIS_URL`` (migrates, creates a bench user and token)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mlplatform_bench_ws REDIS_URL=redis://127.0.0.1:6379/7 \\
        .venv/bin/python bench/ws_latency.py

or measure a running server with an editor's API token::

    .venv/bin/python bench/ws_latency.py --url http://127.0.0.1:8000 --token mlp_...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import websockets

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SENT_AT_KEY = "bench.sent_at"


@dataclass
class Subscriber:
    """One WebSocket client's receipts: seq -> latency in seconds."""

    index: int
    latencies: dict[int, float] = field(default_factory=dict)
    messages: int = 0
    resyncs: int = 0
    last_receive: float = 0.0


class Api:
    """A tiny keep-alive JSON client for the native API (loopback, no proxies)."""

    def __init__(self, base_url: str, token: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.token = token
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST JSON; raise on a non-2xx answer."""
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        self.connection.request("POST", path, body=json.dumps(body), headers=headers)
        response = self.connection.getresponse()
        payload = response.read()
        if response.status >= 300:
            raise RuntimeError(f"POST {path} answered {response.status}: {payload[:300]!r}")
        return json.loads(payload)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (values need not be sorted)."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def machine_facts(server_kind: str) -> dict[str, Any]:
    """CPU, cores, OS, Python, and the database and channel layer the server used."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "server": server_kind,
        "database": os.environ.get("DATABASE_URL", "sqlite (default)").split("@")[-1],
        "channel_layer": "redis" if os.environ.get("REDIS_URL") else "in-memory",
    }
    with contextlib.suppress(OSError):
        facts["redis_version"] = subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip()
    return facts


def process_cpu_seconds(pid: int | None) -> float | None:
    """CPU seconds used so far by the server's process tree (``bench.servers.cpu_seconds_of_tree``), or None."""
    if pid is None:
        return None
    sys.path.insert(0, str(ROOT))
    from bench.servers import cpu_seconds_of_tree

    return cpu_seconds_of_tree(pid)


def own_server_token() -> str:
    """Migrate the database named by DATABASE_URL and return a fresh API token of a bench user."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings")
    os.environ.setdefault("SECRET_KEY", "bench-ws-latency-" + "z" * 40)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    from accounts.models import User
    from accounts.services import api_token_create

    call_command("migrate", verbosity=0)
    user, _ = User.objects.get_or_create(username="bench-ws-latency")
    return api_token_create(user=user, name=f"ws-latency {datetime.now(UTC).isoformat()}")[1]


async def open_subscription(url: str, origin: str, gate: asyncio.Semaphore) -> Any:
    """Connect and read the first ``catchup``; a few clients at a time, retrying refused handshakes."""
    for attempt in range(5):
        async with gate:
            try:
                ws = await websockets.connect(url, origin=origin, proxy=None, max_size=2**24, open_timeout=30)
                first = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
            except (OSError, TimeoutError, websockets.WebSocketException):
                if attempt == 4:
                    raise
                await asyncio.sleep(0.5)
                continue
        if first.get("type") != "catchup":
            raise RuntimeError(f"unexpected first message {first}")
        return ws
    raise RuntimeError("unreachable")


async def subscribe(ws: Any, sub: Subscriber, expected: int, done: asyncio.Event) -> None:
    """Receive until ``expected`` batches arrived (or ``done`` is set by the timeout)."""
    async with ws:
        while len(sub.latencies) < expected and not done.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
            except TimeoutError:
                continue
            now = time.time()
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "ping":
                await ws.send('{"type":"pong"}')
            elif kind == "resync":
                sub.resyncs += 1
            elif kind == "run.event" and SENT_AT_KEY in message.get("metrics", {}):
                sub.messages += 1
                sub.latencies[message["seq"]] = now - message["metrics"][SENT_AT_KEY][0][2]
                sub.last_receive = now


def write(api: Api, run_uuid: str, batches: int, points: int, rate: float, out: dict[str, Any]) -> None:
    """Log ``batches`` batches at ``rate`` per second; each carries its send time as a metric value."""
    request_times: list[float] = []
    interval = 1.0 / rate if rate > 0 else 0.0
    start = time.monotonic()
    out["first_send"] = time.time()
    for batch in range(batches):
        target = start + batch * interval
        if (pause := target - time.monotonic()) > 0:
            time.sleep(pause)
        sent_at = time.time()
        metrics = [{"key": SENT_AT_KEY, "value": sent_at, "step": batch}]
        metrics += [{"key": "loss", "value": 1.0 / (1 + batch + i), "step": batch * points + i} for i in range(points)]
        api.post(f"/api/v1/runs/{run_uuid}/log-batch/", {"metrics": metrics})
        request_times.append(time.time() - sent_at)
    out["request_times"] = request_times


def create_run(api: Api) -> str:
    """A fresh experiment and run to stream; returns the run id."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    experiment = api.post("/api/v1/experiments/", {"name": f"ws-latency-{stamp}"})
    return api.post("/api/v1/runs/", {"experiment_id": experiment["id"], "name": "ws-latency"})["run_id"]


async def run_subscribers(
    ws_url: str, origin: str, count: int, batches: int, timeout: float, ready: Any
) -> list[Subscriber]:
    """Connect ``count`` subscribers, call ``ready()``, then receive until every batch arrived (or timeout)."""
    subs = [Subscriber(index) for index in range(count)]
    # A burst of handshakes all queue for the server's one database thread; daphne drops a handshake that
    # is not accepted within 5 s, so subscribers connect a few at a time (set-up time is not measured).
    gate = asyncio.Semaphore(10)
    sockets = await asyncio.wait_for(
        asyncio.gather(*(open_subscription(ws_url, origin, gate) for _ in subs)), timeout=timeout
    )
    done = asyncio.Event()
    tasks = [asyncio.create_task(subscribe(ws, sub, batches, done)) for ws, sub in zip(sockets, subs, strict=True)]
    ready()
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=timeout)
    except TimeoutError:
        done.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return subs


def subscriber_process(ws_url: str, origin: str, count: int, batches: int, timeout: float, ready, results) -> None:
    """Child process: ``count`` subscribers; sends their receipts back through ``results``."""
    subs = asyncio.run(run_subscribers(ws_url, origin, count, batches, timeout, ready.set))
    results.put([(sub.latencies, sub.messages, sub.resyncs, sub.last_receive) for sub in subs])


def measure(args: argparse.Namespace, base_url: str, token: str, server_pid: int | None) -> dict[str, Any]:
    """Create a run, connect the subscribers, log the batches, collect latencies (and the server's CPU).

    With ``--client-procs N`` the subscribers live in N child processes and the writer alone in this one,
    so client-side queueing (one Python loop reading 100 sockets in turn) does not count as server latency.
    """
    api = Api(base_url, token)
    run_uuid = create_run(api)
    ws_url = base_url.replace("http://", "ws://") + f"/ws/runs/{run_uuid}/?token={token}"
    writer_out: dict[str, Any] = {}
    writer = threading.Thread(target=write, args=(api, run_uuid, args.batches, args.points, args.rate, writer_out))
    cpu: list[float | None] = []

    def start_writer() -> None:
        cpu.append(process_cpu_seconds(server_pid))
        writer.start()

    if args.client_procs <= 0:
        everyone = run_subscribers(ws_url, base_url, args.subscribers, args.batches, args.timeout, start_writer)
        subs = asyncio.run(everyone)
    else:
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        shares = [len(range(i, args.subscribers, args.client_procs)) for i in range(args.client_procs)]
        children = []
        for share in shares:
            ready = context.Event()
            child = context.Process(
                target=subscriber_process,
                args=(ws_url, base_url, share, args.batches, args.timeout, ready, results),
                daemon=True,
            )
            child.start()
            children.append((child, ready))
        for _child, ready in children:
            if not ready.wait(args.timeout):
                raise RuntimeError("subscriber processes did not connect in time")
        start_writer()
        subs = []
        for _ in children:
            for latencies, messages, resyncs, last_receive in results.get(timeout=args.timeout + 30):
                subs.append(Subscriber(len(subs), latencies, messages, resyncs, last_receive))
        for child, _ready in children:
            child.join(timeout=10)
    writer.join()
    cpu.append(process_cpu_seconds(server_pid))
    return summarize(args, subs, writer_out, cpu[0], cpu[1])


def summarize(
    args: argparse.Namespace,
    subs: list[Subscriber],
    writer_out: dict[str, Any],
    cpu_before: float | None,
    cpu_after: float | None,
) -> dict[str, Any]:
    """The result record: delivery, latency and request percentiles, rate, server CPU per batch."""
    latencies = [value for sub in subs for value in sub.latencies.values()]
    delivered = sum(sub.messages for sub in subs)
    expected = args.batches * args.subscribers
    elapsed = max(sub.last_receive for sub in subs) - writer_out["first_send"] if delivered else 0.0
    requests = writer_out.get("request_times", [])
    by_seq: dict[int, list[float]] = {}
    for sub in subs:
        for seq, value in sub.latencies.items():
            by_seq.setdefault(seq, []).append(value)
    slowest = sorted(by_seq, key=lambda seq: statistics.median(by_seq[seq]), reverse=True)[:5]
    return {
        "subscribers": args.subscribers,
        "client_processes": max(args.client_procs, 1),
        "batches": args.batches,
        "points_per_batch": args.points + 1,
        "rate_batches_per_s": args.rate,
        "delivered": delivered,
        "expected": expected,
        "missing": expected - delivered,
        "resyncs": sum(sub.resyncs for sub in subs),
        "latency_ms": {
            "p50": 1000 * statistics.median(latencies) if latencies else None,
            "p99": 1000 * percentile(latencies, 0.99) if latencies else None,
            "max": 1000 * max(latencies) if latencies else None,
            "mean": 1000 * statistics.fmean(latencies) if latencies else None,
        },
        "log_batch_request_ms": {
            "p50": 1000 * statistics.median(requests) if requests else None,
            "p99": 1000 * percentile(requests, 0.99) if requests else None,
        },
        "messages_per_s": delivered / elapsed if elapsed > 0 else None,
        "elapsed_s": elapsed,
        # Where the tail comes from: the batches with the highest median latency, and their request times.
        "slowest_batches": [
            {
                "seq": seq,
                "median_ms": round(1000 * statistics.median(by_seq[seq]), 1),
                "request_ms": round(1000 * requests[seq - 2], 1) if 0 <= seq - 2 < len(requests) else None,
            }
            for seq in slowest
        ],
        # Less sensitive to other load on the machine than the latencies: the server's CPU per batch.
        "server_cpu_ms_per_batch": (
            1000 * (cpu_after - cpu_before) / args.batches if cpu_before is not None and cpu_after is not None else None
        ),
    }


def print_table(result: dict[str, Any]) -> None:
    """The headline numbers as a fixed-width table."""
    lat = result["latency_ms"]
    req = result["log_batch_request_ms"]

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    rows = [
        ("subscribers / client processes", f"{result['subscribers']} / {result['client_processes']}"),
        ("batches x points", f"{result['batches']} x {result['points_per_batch']} @ {result['rate_batches_per_s']}/s"),
        ("delivered / expected", f"{result['delivered']} / {result['expected']} (resyncs {result['resyncs']})"),
        ("latency p50 ms", ms(lat["p50"])),
        ("latency p99 ms", ms(lat["p99"])),
        ("latency max ms", ms(lat["max"])),
        ("log-batch request p50/p99 ms", f"{ms(req['p50'])} / {ms(req['p99'])}"),
        ("messages/s delivered", "-" if result["messages_per_s"] is None else f"{result['messages_per_s']:.0f}"),
        ("server CPU ms per batch", ms(result["server_cpu_ms_per_batch"])),
        ("load average 1m before/after", " / ".join(str(v) for v in result["machine"]["load_average_1m_before_after"])),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'metric'.ljust(width)} | value")
    print(f"{'-' * width}-+-{'-' * 30}")
    for name, value in rows:
        print(f"{name.ljust(width)} | {value}")


def main() -> int:
    """Parse arguments, run the benchmark, print and save the result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running server (default: start daphne on $DATABASE_URL/$REDIS_URL)")
    parser.add_argument("--token", help="an editor's API token (required with --url)")
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--points", type=int, default=10, help="loss points per batch (plus the send-time point)")
    parser.add_argument("--rate", type=float, default=20.0, help="batches per second (0: back to back)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before giving up")
    parser.add_argument(
        "--client-procs",
        type=int,
        default=0,
        help="run the subscribers in N child processes, the writer alone in this one (0: all in this process)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="daphne processes on one listening socket (>1: a fresh bench database via bench.servers, PostgreSQL)",
    )
    args = parser.parse_args()
    if args.url and not args.token:
        parser.error("--url needs --token")
    if args.url and urlsplit(args.url).hostname not in {"127.0.0.1", "localhost", "::1"}:
        parser.error("loopback only: --url must point at 127.0.0.1/localhost")

    load_before = os.getloadavg()
    server = None
    if args.url:
        base_url, token, kind = args.url.rstrip("/"), args.token, "external"
    elif args.workers > 1:
        sys.path.insert(0, str(ROOT))
        from bench.servers import start_ours

        managed = start_ours("pg", server="daphne", workers=args.workers)
        server = SimpleNamespace(url=managed.url, process=managed.process, stop=managed.stop)
        base_url, token = managed.url, managed.headers["Authorization"].removeprefix("Bearer ")
        kind = f"daphne ({args.workers} processes on one socket, started by the benchmark)"
    else:
        token = own_server_token()
        sys.path.insert(0, str(ROOT))
        from django.conf import settings

        from tests.server import database_url, server_env, start_daphne

        env = server_env(database_url(settings.DATABASES["default"]))
        RESULTS.mkdir(parents=True, exist_ok=True)
        server = start_daphne(env, RESULTS / "ws_latency-daphne.log")
        base_url, kind = server.url, "daphne (1 process, started by the benchmark)"
    try:
        result = measure(args, base_url, token, server.process.pid if server is not None else None)
    finally:
        if server is not None:
            server.stop()
    result["machine"] = machine_facts(kind)
    # Other work on the machine skews the numbers; the load average says how much there was.
    result["machine"]["load_average_1m_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    result["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    print_table(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"ws_latency-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"\nwritten to {path.relative_to(ROOT)}")
    return 0 if result["missing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
