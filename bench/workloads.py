"""The benchmark workloads. Every server gets the same MLflow REST API 2.0 traffic; ours also its native API.

Each workload returns :class:`Measurement` rows (one value per connection mode: ``keepalive`` reuses
one connection per client, ``close`` opens a new one per request) plus details for the JSON file.
Sizes are bounded (:class:`Sizes`) and every loop also stops at a time budget, so a slow server
cannot make the benchmark run away. Answers are checked (counts, ordering) so a fast wrong
answer cannot pass for a fast right one.
"""

from __future__ import annotations

import itertools
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from bench.driver import BenchError, Client, Stats, run_parallel
from bench.seeddata import BASE_TIMESTAMP, SEARCH_FILTER, SEARCH_ORDER, expected_matches, seed_values
from bench.tracking import Tracking, log_batch_body, metric

MODES = ("keepalive", "close")
NATIVE = "/api/v1"


@dataclass(frozen=True)
class Sizes:
    """How much each workload does; ``full()`` is the real benchmark, ``tiny()`` the smoke test."""

    log_metric_requests: int = 1000
    ingest_clients: int = 4
    ingest_batches: int = 25
    batch_points: int = 1000
    history_points: int = 100_000
    history_reads: int = 3
    sampled_reads: int = 20
    search_runs: int = 10_000
    search_queries: int = 40
    get_run_requests: int = 300
    native_clients: int = 16
    native_rounds: int = 5
    memory_points: int = 1_000_000
    seed_clients: int = 4
    warmup: int = 20
    loop_seconds: float = 60.0

    @classmethod
    def full(cls) -> Sizes:
        """The sizes the issue asks for."""
        return cls()

    @classmethod
    def tiny(cls) -> Sizes:
        """A few requests per workload: exercises every code path in seconds."""
        return cls(
            log_metric_requests=5,
            ingest_clients=2,
            ingest_batches=2,
            batch_points=10,
            history_points=30,
            history_reads=1,
            sampled_reads=2,
            search_runs=12,
            search_queries=2,
            get_run_requests=3,
            native_clients=2,
            native_rounds=1,
            memory_points=40,
            seed_clients=2,
            warmup=1,
            loop_seconds=60.0,
        )


@dataclass
class Measurement:
    """One reported number, per connection mode; ``best`` is the better of the modes."""

    id: str
    label: str
    unit: str
    better: str  # "lower" or "higher"
    values: dict[str, float | None]

    @property
    def best(self) -> float | None:
        """The better value over the modes measured."""
        present = [v for v in self.values.values() if v is not None]
        if not present:
            return None
        return min(present) if self.better == "lower" else max(present)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "best": self.best}


@dataclass
class Target:
    """A running server to measure."""

    name: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    memory: Callable[[], dict[str, float]] | None = None
    cpu: Callable[[], float] | None = None  # CPU seconds of the server's processes, to report CPU per request
    native: bool = False
    # Bulk seeding through the server's own store, in-process: (runs, experiment name) -> (experiment id, run ids).
    seed_search: Callable[[int, str], tuple[str, list[str]]] | None = None
    # Called after seeding (PostgreSQL: ANALYZE), so every server is measured on fresh planner statistics.
    after_seed: Callable[[], None] | None = None


class Progress:
    """Progress lines on stderr, at most a few per second."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self._last = 0.0

    def stage(self, text: str) -> None:
        """Announce a workload step."""
        if not self.quiet:
            print(f"==> {text}", file=self.stream, flush=True)

    def tick(self, label: str, done: int, total: int) -> None:
        """Report progress of a loop (throttled)."""
        now = time.monotonic()
        if self.quiet or (done < total and now - self._last < 2.0):
            return
        self._last = now
        print(f"    {label}: {done}/{total}", file=self.stream, flush=True)


class Bench:
    """Shared state of one benchmark run against one target."""

    def __init__(self, target: Target, sizes: Sizes, *, modes: tuple[str, ...] = MODES, progress: Progress) -> None:
        self.target = target
        self.sizes = sizes
        self.modes = modes
        self.progress = progress
        self.prefix = f"bench-{int(time.time())}-{random.randrange(1 << 16):04x}"
        self.details: dict[str, Any] = {}
        self.memory_samples: dict[str, dict[str, float]] = {}
        self.errors: dict[str, str] = {}
        # Filled by the workloads that create data other workloads read.
        self.history_run: str | None = None
        self.search_experiment: str | None = None
        self.search_run_ids: list[str] = []

    def client(self, mode: str = "keepalive") -> Client:
        """A new client for ``mode``."""
        return Client(self.target.url, self.target.headers, keepalive=mode == "keepalive")

    def api(self, mode: str = "keepalive") -> Tracking:
        """MLflow API calls over a new client."""
        return Tracking(self.client(mode))

    def name(self, what: str) -> str:
        """A name unique to this run."""
        return f"{self.prefix}-{what}"

    def sample_memory(self, label: str) -> None:
        """Record server memory at a point of the run."""
        if self.target.memory is not None:
            self.memory_samples[label] = self.target.memory()

    def timed_loop(self, label: str, count: int, call: Callable[[int], float]) -> Stats:
        """Call ``call(i)`` (returning seconds) up to ``count`` times within the time budget, after a warm-up."""
        for i in range(min(self.sizes.warmup, count)):
            call(count + i)
        stats = Stats()
        cpu_before = self.target.cpu() if self.target.cpu else None
        deadline = time.monotonic() + self.sizes.loop_seconds
        for i in range(count):
            stats.add(call(i))
            self.progress.tick(label, i + 1, count)
            if time.monotonic() > deadline:
                self.progress.stage(f"{label}: time budget reached after {i + 1} requests")
                break
        if cpu_before is not None and stats.samples:
            stats.cpu_ms = (self.target.cpu() - cpu_before) / len(stats.samples) * 1000
        return stats


def _stats_rows(prefix: str, label: str, per_mode: dict[str, Stats], *, cpu: bool = False) -> list[Measurement]:
    rows = [
        Measurement(f"{prefix}.p50", f"{label} p50", "ms", "lower", {m: s.percentile(50) for m, s in per_mode.items()}),
        Measurement(f"{prefix}.p99", f"{label} p99", "ms", "lower", {m: s.percentile(99) for m, s in per_mode.items()}),
    ]
    if cpu and any(s.cpu_ms is not None for s in per_mode.values()):
        # Server CPU per request barely depends on what else the machine runs, unlike wall time.
        rows.append(
            Measurement(
                f"{prefix}.cpu", f"{label}, server CPU/req", "ms", "lower", {m: s.cpu_ms for m, s in per_mode.items()}
            )
        )
    return rows


def _summaries(per_mode: dict[str, Stats]) -> dict[str, Any]:
    return {mode: stats.summary() for mode, stats in per_mode.items()}


# 1. Sequential log-metric ------------------------------------------------------------------------


def log_metric(bench: Bench) -> list[Measurement]:
    """One client logs one point per request, waiting for each answer."""
    n = bench.sizes.log_metric_requests
    mlflow_api: dict[str, Stats] = {}
    native: dict[str, Stats] = {}
    for mode in bench.modes:
        bench.progress.stage(f"log-metric, {n} sequential requests ({mode})")
        api = bench.api(mode)
        experiment = api.create_experiment(bench.name(f"log-metric-{mode}"))
        run = api.create_run(experiment, name="sequential", start_time=BASE_TIMESTAMP)

        def one(i: int, api: Tracking = api, run: str = run) -> float:
            return api.log_metric(run, "loss", 1.0 / (i + 2), step=i, timestamp=BASE_TIMESTAMP + i).seconds

        mlflow_api[mode] = bench.timed_loop("log-metric", n, one)
        if bench.target.native:
            client = api.client
            path = f"{NATIVE}/runs/{run}/log-batch/"

            def one_native(i: int, client: Client = client, path: str = path) -> float:
                body = {"metrics": [{"key": "acc", "value": i / n, "step": i, "timestamp": BASE_TIMESTAMP + i}]}
                return client.post(path, body).seconds

            native[mode] = bench.timed_loop("native log-batch (1 point)", n, one_native)
        api.client.close()
    bench.details["log_metric"] = {"mlflow_api": _summaries(mlflow_api), "native": _summaries(native)}
    rows = _stats_rows("log_metric", "log-metric", mlflow_api, cpu=True)
    if native:
        rows += _stats_rows("log_metric_native", "native log-batch, 1 point", native)
    return rows


# 2. Concurrent ingest ----------------------------------------------------------------------------


def _batches(run_id: str, batches: int, points: int, *, first_step: int = 0) -> Iterator[bytes]:
    """Serialised log-batch bodies: 10 keys per step, ``points`` points per batch."""
    keys = [f"m{k}" for k in range(10)]
    rows_per_batch = max(1, points // len(keys))
    for b in range(batches):
        base = first_step + b * rows_per_batch
        metrics = [
            metric(keys[j % len(keys)], (base + j // len(keys)) * 0.001, base + j // len(keys), BASE_TIMESTAMP + base)
            for j in range(points)
        ]
        yield log_batch_body(run_id, metrics)


def _ingest(bench: Bench, mode: str, *, clients: int, batches: int, points: int, label: str) -> dict[str, Any]:
    """``clients`` threads, each with its own run, each posting ``batches`` bodies of ``points`` points."""
    setup = bench.api("keepalive")
    experiment = setup.create_experiment(bench.name(f"{label}-{mode}"))
    runs = [setup.create_run(experiment, name=f"writer-{i}", start_time=BASE_TIMESTAMP) for i in range(clients)]
    setup.client.close()
    bodies = [list(_batches(run, batches, points)) for run in runs]
    total = clients * batches
    done = [0]

    def writer(index: int) -> Stats:
        api = bench.api(mode)
        stats = Stats()
        for body in bodies[index]:
            stats.add(api.log_batch(body).seconds)
            done[0] += 1
            bench.progress.tick(f"{label} batches", done[0], total)
        api.client.close()
        return stats

    cpu_before = bench.target.cpu() if bench.target.cpu else None
    per_client, wall = run_parallel(clients, writer)
    merged = Stats([s for stats in per_client for s in stats.samples])
    cpu_per_1000 = None
    if cpu_before is not None:
        cpu_per_1000 = (bench.target.cpu() - cpu_before) / (clients * batches * points) * 1000 * 1000
    return {
        "server_cpu_ms_per_1000_points": cpu_per_1000,
        "points": clients * batches * points,
        "seconds": wall,
        "points_per_second": clients * batches * points / wall,
        "batch_latency": merged.summary(),
        "runs": runs,
    }


def ingest(bench: Bench) -> list[Measurement]:
    """4 clients x log-batch of 1000 points: points per second over the whole run."""
    s = bench.sizes
    results = {}
    for mode in bench.modes:
        bench.progress.stage(
            f"ingest, {s.ingest_clients} clients x {s.ingest_batches} x {s.batch_points} points ({mode})"
        )
        results[mode] = _ingest(
            bench, mode, clients=s.ingest_clients, batches=s.ingest_batches, points=s.batch_points, label="ingest"
        )
    bench.details["ingest"] = {m: {k: v for k, v in r.items() if k != "runs"} for m, r in results.items()}
    rows = [
        Measurement(
            "ingest.points_per_s",
            "ingest, 4xlog-batch(1000)",
            "pts/s",
            "higher",
            {m: r["points_per_second"] for m, r in results.items()},
        ),
        Measurement(
            "ingest.batch_p50",
            "ingest log-batch p50",
            "ms",
            "lower",
            {m: r["batch_latency"]["p50_ms"] for m, r in results.items()},
        ),
    ]
    if bench.target.cpu is not None:
        rows.insert(
            1,
            Measurement(
                "ingest.cpu_per_1000",
                "ingest, server CPU per 1000 points",
                "ms",
                "lower",
                {m: r["server_cpu_ms_per_1000_points"] for m, r in results.items()},
            ),
        )
    return rows


# 3. Metric history -------------------------------------------------------------------------------


def history(bench: Bench) -> list[Measurement]:
    """Full read of a long metric history, and a 1000-point downsampled read of it."""
    s = bench.sizes
    bench.progress.stage(f"history: writing {s.history_points} points to one metric")
    api = bench.api("keepalive")
    experiment = api.create_experiment(bench.name("history"))
    run = api.create_run(experiment, name="long-history", start_time=BASE_TIMESTAMP)
    per_batch = min(1000, s.history_points)
    written = 0
    while written < s.history_points:
        count = min(per_batch, s.history_points - written)
        points = [
            metric("loss", 1.0 / (1 + (written + j) * 1e-3) + ((written + j) % 97) * 1e-4, written + j, BASE_TIMESTAMP)
            for j in range(count)
        ]
        api.log_batch(log_batch_body(run, points))
        written += count
        bench.progress.tick("history points", written, s.history_points)
    api.client.close()
    # Fresh planner statistics, as autovacuum's ANALYZE gives a minute after a load (same for every server):
    # read back seconds after 100k inserts, PostgreSQL plans the series as one row and sorts all 100k
    # rows for every page (38 ms instead of 9 ms per 25k-point page, bench/RESULTS.md).
    if bench.target.after_seed is not None:
        bench.target.after_seed()
    bench.history_run = run
    sampled_points = min(1000, max(5, s.history_points // 5))

    full: dict[str, Stats] = {}
    sampled: dict[str, Stats | None] = {}
    native_full: dict[str, Stats] = {}
    native_sampled: dict[str, Stats] = {}
    native_cold: dict[str, Stats] = {}
    cold_sizes = itertools.count(1)
    notes: dict[str, str] = {}
    for mode in bench.modes:
        bench.progress.stage(f"history reads ({mode})")
        api = bench.api(mode)
        pages: list[int] = []

        def read_full(_i: int, api: Tracking = api, pages: list[int] = pages) -> float:
            count, seconds, requests = api.metric_history(run, "loss")
            if count != s.history_points:
                raise BenchError(f"get-history returned {count} points, expected {s.history_points}")
            pages.append(requests)
            return seconds

        full[mode] = bench.timed_loop("full history reads", s.history_reads, read_full)
        notes[f"get_history_requests_per_read_{mode}"] = str(max(pages))
        try:

            def read_sampled(_i: int, api: Tracking = api) -> float:
                answer = api.metric_history_sampled(run, "loss", sampled_points)
                got = len(answer.json().get("metrics", []))
                if not 0 < got <= sampled_points + 2:
                    raise BenchError(
                        f"get-history-bulk-interval returned {got} points for max_results={sampled_points}"
                    )
                return answer.seconds

            sampled[mode] = bench.timed_loop("sampled history reads", s.sampled_reads, read_sampled)
        except BenchError as exc:
            sampled[mode] = None
            notes["get_history_bulk_interval"] = f"not supported: {str(exc)[:200]}"
        if bench.target.native:
            client = api.client
            path = f"{NATIVE}/runs/{run}/metrics/loss/history/"

            def native_read(_i: int, client: Client = client, path: str = path) -> float:
                seconds, token, count = 0.0, "", 0
                while True:
                    answer = client.get(path, {"page_token": token} if token else None)
                    data = answer.json()
                    seconds += answer.seconds
                    count += len(data["points"])
                    token = data.get("next_page_token") or ""
                    if not token:
                        break
                if count != s.history_points:
                    raise BenchError(f"native history returned {count} points, expected {s.history_points}")
                return seconds

            def native_downsampled(_i: int, client: Client = client, path: str = path, cold: bool = False) -> float:
                # A cold read asks for a size no read asked before, so no cached answer can serve it.
                wanted = max(5, sampled_points - next(cold_sizes)) if cold else sampled_points  # 5: the API minimum
                answer = client.get(path, {"max_points": wanted})
                got = len(answer.json()["points"])
                if not 0 < got <= wanted:
                    raise BenchError(f"native max_points={wanted} returned {got} points")
                return answer.seconds

            native_full[mode] = bench.timed_loop("native full history reads", s.history_reads, native_read)
            native_sampled[mode] = bench.timed_loop("native max_points reads", s.sampled_reads, native_downsampled)
            native_cold[mode] = bench.timed_loop(
                "native max_points reads, uncached",
                s.sampled_reads,
                lambda i, read=native_downsampled: read(i, cold=True),
            )
        api.client.close()
    bench.details["history"] = {
        "points": s.history_points,
        "sampled_points": sampled_points,
        "full": _summaries(full),
        "sampled": {m: st.summary() for m, st in sampled.items() if st is not None},
        "native_full": _summaries(native_full),
        "native_sampled": _summaries(native_sampled),
        "native_sampled_uncached": _summaries(native_cold),
        "notes": notes,
    }
    rows = [
        Measurement(
            "history.full_p50",
            f"history {s.history_points} pts, full read p50",
            "ms",
            "lower",
            {m: st.percentile(50) for m, st in full.items()},
        ),
        Measurement(
            "history.sampled_p50",
            "history get-history-bulk-interval p50",
            "ms",
            "lower",
            {m: (st.percentile(50) if st is not None else None) for m, st in sampled.items()},
        ),
    ]
    if native_full:
        rows += [
            Measurement(
                "history.native_full_p50",
                "native history full read p50",
                "ms",
                "lower",
                {m: st.percentile(50) for m, st in native_full.items()},
            ),
            Measurement(
                "history.native_sampled_p50",
                f"native history max_points={sampled_points} p50 (repeat read)",
                "ms",
                "lower",
                {m: st.percentile(50) for m, st in native_sampled.items()},
            ),
            Measurement(
                "history.native_sampled_uncached_p50",
                "native history max_points, first read of each size p50",
                "ms",
                "lower",
                {m: st.percentile(50) for m, st in native_cold.items()},
            ),
        ]
    return rows


# 4 and 5. Run search, runs page, get run ---------------------------------------------------------


def seed_search_runs(bench: Bench) -> None:
    """Create ``search_runs`` runs (2 metrics, 2 params, 1 tag each): through the target's own store when it
    offers bulk seeding (``Target.seed_search``), otherwise through the MLflow API with parallel clients."""
    s = bench.sizes
    if bench.target.seed_search is not None:
        bench.progress.stage(f"search: seeding {s.search_runs} runs in-process through the server's store")
        started = time.perf_counter()
        bench.search_experiment, bench.search_run_ids = bench.target.seed_search(s.search_runs, bench.name("search"))
        if bench.target.after_seed is not None:
            bench.target.after_seed()
        seconds = round(time.perf_counter() - started, 2)
        bench.details["search_seed"] = {"runs": s.search_runs, "seconds": seconds, "how": "in-process store"}
        return
    api = bench.api()
    experiment = api.create_experiment(bench.name("search"))
    api.client.close()
    bench.search_experiment = experiment
    bench.progress.stage(f"search: seeding {s.search_runs} runs with {s.seed_clients} clients")
    done = [0]

    def seeder(worker: int) -> list[str]:
        api = bench.api("keepalive")
        ids = []
        for i in range(worker, s.search_runs, s.seed_clients):
            acc, loss, lr, batch = seed_values(i)
            run = api.create_run(experiment, name=f"run-{i}", start_time=BASE_TIMESTAMP + i)
            body = {
                "run_id": run,
                "metrics": [metric("acc", acc, 0, BASE_TIMESTAMP + i), metric("loss", loss, 0, BASE_TIMESTAMP + i)],
                "params": [{"key": "lr", "value": lr}, {"key": "batch_size", "value": batch}],
                "tags": [{"key": "team", "value": f"squad-{i % 7}"}],
            }
            api.client.post("/api/2.0/mlflow/runs/log-batch", body)
            ids.append(run)
            done[0] += 1
            bench.progress.tick("runs seeded", done[0], s.search_runs)
        api.client.close()
        return ids

    started = time.perf_counter()
    per_worker, _wall = run_parallel(s.seed_clients, seeder)
    bench.search_run_ids = [run for ids in per_worker for run in ids]
    if bench.target.after_seed is not None:
        bench.target.after_seed()
    bench.details["search_seed"] = {
        "runs": s.search_runs,
        "seconds": round(time.perf_counter() - started, 2),
        "how": f"MLflow REST API, {s.seed_clients} clients",
    }


def search(bench: Bench) -> list[Measurement]:
    """Search with a metric and a param filter, ordered by a metric; the unfiltered runs page; get run."""
    s = bench.sizes
    if bench.search_experiment is None:
        seed_search_runs(bench)
    experiment = bench.search_experiment
    expected = expected_matches(s.search_runs)[:100]
    filtered: dict[str, Stats] = {}
    page: dict[str, Stats] = {}
    get_run: dict[str, Stats] = {}
    native: dict[str, dict[str, Stats]] = {"search": {}, "page": {}, "get": {}}
    rng = random.Random(7)
    for mode in bench.modes:
        bench.progress.stage(f"search over {s.search_runs} runs, runs page, get run ({mode})")
        api = bench.api(mode)

        def filtered_search(_i: int, api: Tracking = api) -> float:
            answer = api.search_runs(experiment, filter_string=SEARCH_FILTER, order_by=SEARCH_ORDER)
            runs = answer.json().get("runs", [])
            accs = [next(m["value"] for m in r["data"]["metrics"] if m["key"] == "acc") for r in runs]
            if len(accs) != len(expected) or (accs and abs(accs[0] - expected[0]) > 1e-9):
                raise BenchError(f"search returned {len(accs)} runs (top {accs[:1]}), expected {len(expected)}")
            return answer.seconds

        def runs_page(_i: int, api: Tracking = api) -> float:
            answer = api.search_runs(experiment)
            if len(answer.json().get("runs", [])) != min(100, s.search_runs):
                raise BenchError("runs page returned the wrong number of runs")
            return answer.seconds

        def get_one(_i: int, api: Tracking = api) -> float:
            return api.get_run(rng.choice(bench.search_run_ids)).seconds

        filtered[mode] = bench.timed_loop("filtered searches", s.search_queries, filtered_search)
        page[mode] = bench.timed_loop("runs pages", s.search_queries, runs_page)
        get_run[mode] = bench.timed_loop("get run", s.get_run_requests, get_one)
        if bench.target.native:
            client = api.client
            query = {"experiment_id": experiment, "filter": SEARCH_FILTER, "order_by": SEARCH_ORDER, "page_size": 100}

            def native_search(_i: int, client: Client = client, query: dict[str, Any] = query) -> float:
                answer = client.get(f"{NATIVE}/runs/", query)
                if len(answer.json()["results"]) != len(expected):
                    raise BenchError("native search returned the wrong number of runs")
                return answer.seconds

            def native_page(_i: int, client: Client = client) -> float:
                return client.get(f"{NATIVE}/runs/", {"experiment_id": experiment, "page_size": 100}).seconds

            def native_get(_i: int, client: Client = client) -> float:
                return client.get(f"{NATIVE}/runs/{rng.choice(bench.search_run_ids)}/").seconds

            native["search"][mode] = bench.timed_loop("native searches", s.search_queries, native_search)
            native["page"][mode] = bench.timed_loop("native runs pages", s.search_queries, native_page)
            native["get"][mode] = bench.timed_loop("native get run", s.get_run_requests, native_get)
        api.client.close()
    bench.details["search"] = {
        "runs": s.search_runs,
        "filter": SEARCH_FILTER,
        "order_by": SEARCH_ORDER,
        "matches_on_first_page": len(expected),
        "filtered": _summaries(filtered),
        "page": _summaries(page),
        "get_run": _summaries(get_run),
        "native": {name: _summaries(per_mode) for name, per_mode in native.items()},
    }
    n = s.search_runs
    rows = _stats_rows("search", f"search {n} runs (metric+param filter, order)", filtered, cpu=True)
    rows += _stats_rows("runs_page", f"runs page (100 of {n})", page)
    rows += _stats_rows("get_run", "get run", get_run, cpu=True)
    if bench.target.native:
        rows += _stats_rows("search_native", f"native search {n} runs", native["search"])
        rows += _stats_rows("runs_page_native", "native runs page", native["page"])
        rows += _stats_rows("get_run_native", "native get run", native["get"])
    return rows


# 6. Native read endpoints under concurrency (ours only) ------------------------------------------


def native_endpoints(bench: Bench) -> dict[str, tuple[str, dict[str, Any] | None]]:
    """The native read endpoints a browser or client hits, with arguments from the seeded data."""
    experiment = bench.search_experiment
    run = bench.search_run_ids[0]
    endpoints: dict[str, tuple[str, dict[str, Any] | None]] = {
        "me": (f"{NATIVE}/me/", None),
        "teams": (f"{NATIVE}/teams/", None),
        "experiments": (f"{NATIVE}/experiments/", None),
        "experiment": (f"{NATIVE}/experiments/{experiment}/", None),
        "runs page": (f"{NATIVE}/runs/", {"experiment_id": experiment}),
        "runs search": (
            f"{NATIVE}/runs/",
            {"experiment_id": experiment, "filter": SEARCH_FILTER, "order_by": SEARCH_ORDER},
        ),
        "run": (f"{NATIVE}/runs/{run}/", None),
        "compare history": (
            f"{NATIVE}/runs/metrics/history/",
            {"run_id": bench.search_run_ids[:5], "key": ["acc", "loss"]},
        ),
        "models": (f"{NATIVE}/models/", None),
        "deployments": (f"{NATIVE}/deployments/", None),
    }
    if bench.history_run:
        endpoints["history max_points=1000"] = (
            f"{NATIVE}/runs/{bench.history_run}/metrics/loss/history/",
            {"max_points": 1000},
        )
    return endpoints


def native_reads(bench: Bench) -> list[Measurement]:
    """16 clients cycle through the native read endpoints; p99 per endpoint and overall."""
    if not bench.target.native:
        return []
    if bench.search_experiment is None:
        seed_search_runs(bench)
    s = bench.sizes
    endpoints = native_endpoints(bench)
    names = list(endpoints)
    overall: dict[str, Stats] = {}
    worst: dict[str, float] = {}
    per_endpoint: dict[str, dict[str, Any]] = {}
    throughput: dict[str, float] = {}
    for mode in bench.modes:
        total = s.native_clients * s.native_rounds * len(names)
        bench.progress.stage(
            f"native reads: {s.native_clients} clients x {s.native_rounds} rounds x {len(names)} endpoints ({mode})"
        )
        done = [0]

        def reader(index: int, mode: str = mode, total: int = total, done: list[int] = done) -> dict[str, Stats]:
            client = bench.client(mode)
            order = names[:]
            random.Random(index).shuffle(order)
            stats = {name: Stats() for name in names}
            deadline = time.monotonic() + s.loop_seconds
            for _round in range(s.native_rounds):
                for name in order:
                    path, query = endpoints[name]
                    stats[name].add(client.get(path, query).seconds)
                    done[0] += 1
                    bench.progress.tick("native reads", done[0], total)
                if time.monotonic() > deadline:
                    break
            client.close()
            return stats

        results, wall = run_parallel(s.native_clients, reader)
        merged = {name: Stats([x for r in results for x in r[name].samples]) for name in names}
        per_endpoint[mode] = {name: stats.summary() for name, stats in merged.items()}
        overall[mode] = Stats([x for stats in merged.values() for x in stats.samples])
        worst[mode] = max(stats.percentile(99) for stats in merged.values())
        throughput[mode] = len(overall[mode].samples) / wall
    bench.details["native_reads"] = {
        "clients": s.native_clients,
        "endpoints": {name: [path, query] for name, (path, query) in endpoints.items()},
        "per_endpoint": per_endpoint,
        "requests_per_second": throughput,
    }
    return [
        Measurement(
            "native_reads.p99_all",
            f"native reads, {s.native_clients} clients, p99 all",
            "ms",
            "lower",
            {m: st.percentile(99) for m, st in overall.items()},
        ),
        Measurement("native_reads.p99_worst", "native reads, worst endpoint p99", "ms", "lower", worst),
        Measurement("native_reads.rps", "native reads throughput", "req/s", "higher", throughput),
    ]


# 7. Memory after ingesting 1M points -------------------------------------------------------------


def memory(bench: Bench) -> list[Measurement]:
    """Server memory before and after ingesting ``memory_points`` points (and after a long history read)."""
    s = bench.sizes
    if bench.target.memory is None:
        return []
    before = bench.target.memory()
    clients = s.ingest_clients
    batches = max(1, s.memory_points // (clients * s.batch_points))
    bench.progress.stage(f"memory: ingesting {clients * batches * s.batch_points} points")
    result = _ingest(bench, "keepalive", clients=clients, batches=batches, points=s.batch_points, label="memory-ingest")
    after = bench.target.memory()
    if bench.history_run:
        bench.api().metric_history(bench.history_run, "loss")
    after_read = bench.target.memory()
    bench.details["memory"] = {
        "points": result["points"],
        "ingest_points_per_second": result["points_per_second"],
        "before": before,
        "after_ingest": after,
        "after_history_read": after_read,
        "samples": bench.memory_samples,
    }
    return [
        Measurement(
            "memory.rss_before", "server RSS before (all processes)", "MiB", "lower", {"keepalive": before["rss_mib"]}
        ),
        Measurement(
            "memory.rss_after",
            f"server RSS after {result['points'] / 1e6:g}M points",
            "MiB",
            "lower",
            {"keepalive": after["rss_mib"]},
        ),
        Measurement(
            "memory.rss_after_read",
            "server RSS after a full history read",
            "MiB",
            "lower",
            {"keepalive": after_read["rss_mib"]},
        ),
        Measurement(
            "memory.ingest_rate",
            "ingest rate during the 1M-point load",
            "pts/s",
            "higher",
            {"keepalive": result["points_per_second"]},
        ),
    ]


WORKLOADS: dict[str, Callable[[Bench], list[Measurement]]] = {
    "log_metric": log_metric,
    "ingest": ingest,
    "history": history,
    "search": search,
    "native_reads": native_reads,
    "memory": memory,
}


def run_workloads(bench: Bench, names: list[str] | None = None, *, keep_going: bool = False) -> list[Measurement]:
    """Run the named workloads (all by default) in order; returns every measurement.

    With ``keep_going`` a failing workload is recorded in ``bench.errors`` and the next one runs.
    """
    rows: list[Measurement] = []
    bench.sample_memory("start")
    for name in names or list(WORKLOADS):
        started = time.perf_counter()
        try:
            rows += WORKLOADS[name](bench)
        except Exception as exc:
            if not keep_going:
                raise
            bench.errors[name] = f"{type(exc).__name__}: {str(exc)[:1000]}"
            bench.progress.stage(f"{name} FAILED: {bench.errors[name][:300]}")
        bench.details.setdefault("workload_seconds", {})[name] = round(time.perf_counter() - started, 2)
        bench.sample_memory(f"after_{name}")
    return rows
