"""Mixed-traffic soak driver: writers, readers, searchers and WebSocket subscribers against one daphne.

Used by ``test_soak.py`` (60 s in CI) and by ``make soak`` (10 minutes by default)::

    python -m tests.resilience.soak --duration 600 [--json var/soak.json]

``make soak`` runs against the configured database (DATABASE_URL, else a throwaway SQLite file) and Redis
(REDIS_URL when set): it migrates a scratch database, seeds a user and an experiment, starts daphne, drives
traffic, then reads every logged point back. All traffic goes to 127.0.0.1 and is bounded in time and count.
Reported: requests and 5xx per kind, p50/p99 latency, points sent/stored/lost, points pushed over WebSocket,
and the server's RSS after warm-up and at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import websockets

BATCH = 20
MAX_REQUESTS_PER_WORKER = 50_000


@dataclass
class Stats:
    """Thread-safe counters shared by every worker."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, status: int, seconds: float, detail: str = "") -> None:
        """Count one request."""
        with self.lock:
            self.latencies[kind].append(seconds)
            self.statuses[kind][status] += 1
            if status >= 500 and len(self.errors) < 20:
                self.errors.append(f"{kind} {status}: {detail[:200]}")


def rss_kib(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000, 1)


class Soak:
    """One soak run against ``url`` with an editor's ``token`` in experiment ``experiment_id``."""

    def __init__(self, url: str, token: str, experiment_id: int, *, writers: int = 3, readers: int = 2,
                 searchers: int = 1, subscribers: int = 3) -> None:  # fmt: skip
        self.url, self.token, self.experiment_id = url, token, experiment_id
        self.counts = {"writers": writers, "readers": readers, "searchers": searchers, "subscribers": subscribers}
        self.stats = Stats()
        self.stop = threading.Event()
        # Set once every writer has returned: until then a write in flight may still add to ``sent``.
        self.writers_done = threading.Event()
        self.runs: list[str] = []
        self.sent: dict[str, int] = defaultdict(int)
        self.pushed: dict[str, set[int]] = defaultdict(set)
        self.stream_events: dict[str, int] = defaultdict(int)

    def session(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        session.trust_env = False  # never through a proxy: all traffic stays on 127.0.0.1
        return session

    def call(self, session: requests.Session, kind: str, method: str, path: str, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            response = session.request(method, self.url + path, timeout=30, **kwargs)
        except requests.RequestException as exc:
            self.stats.record(kind, 599, time.monotonic() - started, str(exc))
            return None
        self.stats.record(kind, response.status_code, time.monotonic() - started, response.text)
        return response

    def writer(self, run_id: str) -> None:
        session = self.session()
        step = 0
        for _ in range(MAX_REQUESTS_PER_WORKER):
            if self.stop.is_set():
                return
            metrics = [
                {"key": "loss", "value": 1.0 / (step + i + 1), "step": step + i, "timestamp": int(time.time() * 1000)}
                for i in range(BATCH)
            ]
            response = self.call(
                session, "write", "POST", f"/api/v1/runs/{run_id}/log-batch/", json={"metrics": metrics}
            )
            if response is not None and response.status_code == 200:
                self.sent[run_id] += BATCH
                step += BATCH

    def reader(self, index: int) -> None:
        session = self.session()
        for count in range(MAX_REQUESTS_PER_WORKER):
            if self.stop.is_set():
                return
            run_id = self.runs[(index + count) % len(self.runs)]
            if count % 3 == 0:
                self.call(session, "read", "GET", f"/api/v1/runs/{run_id}/")
            elif count % 3 == 1:
                self.call(session, "read", "GET", f"/api/v1/runs/{run_id}/metrics/loss/history/?max_points=200")
            else:
                self.call(session, "read", "GET", "/api/v1/experiments/")

    def searcher(self) -> None:
        session = self.session()
        filters = ["metrics.loss < 0.5", "attributes.status = 'RUNNING'", "params.missing = 'x'", ""]
        for count in range(MAX_REQUESTS_PER_WORKER):
            if self.stop.is_set():
                return
            query = {"experiment_id": self.experiment_id, "filter": filters[count % len(filters)]}
            self.call(session, "search", "GET", "/api/v1/runs/", params={**query, "order_by": "metrics.loss ASC"})

    async def subscribe(self, run_id: str) -> None:
        url = self.url.replace("http://", "ws://") + f"/ws/runs/{run_id}/?token={self.token}"
        last = 0
        # Done when the writers are done and every point they sent was pushed. Checking ``stop`` instead let a
        # subscriber leave while a writer's last batch was in flight (its 200, hence ``sent``, came after the
        # check): seen when the server's 60 s idle close of this listen-only client coincided with the end.
        while not (self.writers_done.is_set() and len(self.pushed[run_id]) >= self.sent[run_id]):
            try:
                async with websockets.connect(
                    f"{url}&since={last}", origin=self.url, proxy=None, open_timeout=10
                ) as socket:
                    self.stream_events["connects"] += 1
                    while True:
                        message = json.loads(await asyncio.wait_for(socket.recv(), timeout=2))
                        if message["type"] in {"catchup", "run.event"}:
                            last = max(last, message["seq"])
                            for step, _ts, _value in message.get("metrics", {}).get("loss", []):
                                self.pushed[run_id].add(step)
                        elif message["type"] == "resync":
                            # What a browser does: ask for the replay at once instead of waiting for silence.
                            self.stream_events["resyncs"] += 1
                            await socket.send(json.dumps({"type": "resume", "since": last}))
            except (TimeoutError, OSError, websockets.WebSocketException):
                if self.stop.is_set() and time.monotonic() > self.drain_deadline:
                    return

    def run(self, duration: float, pid: int | None) -> dict[str, Any]:
        """Drive traffic for ``duration`` seconds, then check every point; returns the report."""
        setup = self.session()
        for index in range(self.counts["writers"]):
            response = setup.post(
                f"{self.url}/api/v1/runs/",
                json={"experiment_id": self.experiment_id, "name": f"soak-{index}"},
                timeout=30,
            )
            response.raise_for_status()
            self.runs.append(response.json()["run_id"])
        self.drain_deadline = float("inf")
        writers = [threading.Thread(target=self.writer, args=(run_id,)) for run_id in self.runs]
        threads = list(writers)
        threads += [threading.Thread(target=self.reader, args=(i,)) for i in range(self.counts["readers"])]
        threads += [threading.Thread(target=self.searcher) for _ in range(self.counts["searchers"])]
        subscribed = self.runs[: self.counts["subscribers"]]
        threads += [threading.Thread(target=lambda r=run_id: asyncio.run(self.subscribe(r))) for run_id in subscribed]
        for thread in threads:
            thread.daemon = True
            thread.start()
        started = time.monotonic()
        warm_up = min(15.0, duration * 0.25)
        time.sleep(warm_up)
        rss_after_warm_up = rss_kib(pid) if pid else 0
        time.sleep(max(0.0, duration - warm_up))
        self.stop.set()
        self.drain_deadline = time.monotonic() + 30
        for thread in writers:
            thread.join(timeout=45)
        self.writers_done.set()
        for thread in threads:
            thread.join(timeout=45)
        elapsed = time.monotonic() - started
        rss_end = rss_kib(pid) if pid else 0

        stored = {run_id: self.stored_points(setup, run_id) for run_id in self.runs}
        sent_total = sum(self.sent.values())
        lost = sum(max(0, self.sent[run_id] - stored[run_id]) for run_id in self.runs)
        missed_live = sum(max(0, self.sent[run_id] - len(self.pushed[run_id])) for run_id in subscribed)
        kinds = sorted(self.stats.latencies)
        return {
            "duration_s": round(elapsed, 1),
            "requests": sum(len(self.stats.latencies[k]) for k in kinds),
            "server_errors": sum(n for k in kinds for status, n in self.stats.statuses[k].items() if status >= 500),
            "by_kind": {
                kind: {
                    "requests": len(self.stats.latencies[kind]),
                    "statuses": dict(self.stats.statuses[kind]),
                    "p50_ms": percentile(self.stats.latencies[kind], 0.50),
                    "p99_ms": percentile(self.stats.latencies[kind], 0.99),
                    "mean_ms": round(statistics.fmean(self.stats.latencies[kind]) * 1000, 1),
                }
                for kind in kinds
            },
            "points_sent": sent_total,
            "points_stored": sum(stored.values()),
            "points_lost": lost,
            "points_missed_by_websocket": missed_live,
            # For diagnosis when points are missed: (re)connections, resyncs, and the first steps not pushed.
            "websocket_events": dict(self.stream_events),
            "steps_missed_by_websocket": {
                run_id[:8]: sorted(set(range(self.sent[run_id])) - self.pushed[run_id])[:10]
                for run_id in subscribed
                if len(self.pushed[run_id]) < self.sent[run_id]
            },
            "rss_kib_after_warm_up": rss_after_warm_up,
            "rss_kib_end": rss_end,
            "rss_growth": round(rss_end / rss_after_warm_up - 1, 3) if rss_after_warm_up else None,
            "first_errors": self.stats.errors,
        }

    def stored_points(self, session: requests.Session, run_id: str) -> int:
        """Count a run's points by paging through its full history."""
        total, url = 0, f"{self.url}/api/v1/runs/{run_id}/metrics/loss/history/?page_size=10000"
        while url:
            response = session.get(url, timeout=60)
            response.raise_for_status()
            body = response.json()
            total += len(body["points"])
            url = body.get("next")
        return total


def print_report(report: dict[str, Any]) -> None:
    """A human-readable table of the report."""
    print(f"\nsoak: {report['duration_s']} s, {report['requests']} requests, {report['server_errors']} 5xx")
    print(f"{'kind':<8} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8}  statuses")
    for kind, row in report["by_kind"].items():
        print(f"{kind:<8} {row['requests']:>9} {row['p50_ms']:>8} {row['p99_ms']:>8}  {row['statuses']}")
    print(
        f"points sent {report['points_sent']}, stored {report['points_stored']}, lost {report['points_lost']}, "
        f"missed live {report['points_missed_by_websocket']}"
    )
    print(f"RSS after warm-up {report['rss_kib_after_warm_up']} KiB, at end {report['rss_kib_end']} KiB "
          f"(growth {report['rss_growth']})")  # fmt: skip


def main() -> None:
    """``make soak``: a scratch database on the configured server, daphne, traffic, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--json", type=Path, default=Path("var/soak.json"))
    parser.add_argument(
        "--database",
        default="mlplatform_soak",
        help="scratch database created on DATABASE_URL's server (dropped first)",
    )
    args = parser.parse_args()

    from tests.resilience.services import manage, seed_token
    from tests.server import server_env, start_daphne

    folder = Path(tempfile.mkdtemp(prefix="mlplatform-soak-"))
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{folder / 'soak.sqlite3'}"
    if database_url.startswith("postgres"):
        import psycopg

        admin_url, _, _ = database_url.rpartition("/")
        name = args.database
        database_url = f"{admin_url}/{name}"
        with psycopg.connect(f"{admin_url}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')
    manage(database_url, "migrate", "--noinput")
    token, experiment_id = seed_token(database_url)
    env = server_env(database_url, MLPLATFORM_VAR_DIR=str(folder))
    server = start_daphne(env, folder / "daphne.log")
    try:
        report = Soak(server.url, token, experiment_id).run(args.duration, server.process.pid)
    finally:
        server.stop()
    print_report(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"report written to {args.json}")
    ok = report["server_errors"] == 0 and report["points_lost"] == 0 and (report["rss_growth"] or 0) <= 0.2
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
