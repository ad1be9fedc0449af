"""Profile our server under one workload with py-spy and print where the time goes.

    python -m bench.profile --backend pg --workload log_metric --seconds 20

Starts our server (as ``bench.run`` does), drives the workload in a loop, samples the server process
with ``py-spy record --format raw`` (py-spy from ``BENCH_PYSPY`` or ``var/bench/tools-venv``), then
prints the functions with the most inclusive and self samples, filtered to the request thread(s).
The raw collapsed stacks are kept in ``var/bench/profile-<workload>.txt`` for flame graphs.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import threading
import time
from pathlib import Path

from bench import servers
from bench.tracking import Tracking, log_batch_body, metric
from bench.workloads import BASE_TIMESTAMP, NATIVE, Bench, Progress, Sizes, Target, seed_search_runs

PYSPY = Path(os.environ.get("BENCH_PYSPY", servers.BENCH_VAR / "tools-venv" / "bin" / "py-spy"))


def _driver(bench: Bench, workload: str, stop: threading.Event) -> int:
    """Send ``workload`` requests until ``stop`` is set; returns how many were sent."""
    api: Tracking = bench.api("keepalive")
    experiment = api.create_experiment(bench.name("profile"))
    run = api.create_run(experiment, name="profile", start_time=BASE_TIMESTAMP)
    sent = 0
    if workload == "log_metric":
        while not stop.is_set():
            api.log_metric(run, "loss", 0.5, step=sent, timestamp=BASE_TIMESTAMP + sent)
            sent += 1
    elif workload == "log_batch":
        while not stop.is_set():
            points = [metric(f"m{j % 10}", j * 0.1, sent * 100 + j // 10, BASE_TIMESTAMP) for j in range(1000)]
            api.log_batch(log_batch_body(run, points))
            sent += 1
    elif workload in {"get_run", "search", "native_get_run"}:
        while not stop.is_set():
            if workload == "get_run":
                api.get_run(bench.search_run_ids[sent % len(bench.search_run_ids)])
            elif workload == "native_get_run":
                api.client.get(f"{NATIVE}/runs/{bench.search_run_ids[sent % len(bench.search_run_ids)]}/")
            else:
                api.search_runs(
                    bench.search_experiment,
                    filter_string="metrics.acc > 0.5 and params.lr = '0.01'",
                    order_by=["metrics.acc DESC"],
                )
            sent += 1
    else:
        raise SystemExit(f"unknown workload {workload!r}")
    return sent


def summarise(raw: str, top: int = 35) -> str:
    """Inclusive and self sample counts per function from py-spy's collapsed stacks."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        # Only the threads that serve requests (Django's sync_to_async worker threads and the event loop).
        total += count
        seen = set()
        for frame in frames:
            name = frame.split(" (")[0] + " (" + frame.split(" (")[-1] if " (" in frame else frame
            if name not in seen:
                inclusive[name] += count
                seen.add(name)
        own[frames[-1]] += count
    lines = [f"{total} samples", "", "inclusive:"]
    lines += [f"{100 * c / total:5.1f}%  {name}" for name, c in inclusive.most_common(top)]
    lines += ["", "self:"]
    lines += [f"{100 * c / total:5.1f}%  {name}" for name, c in own.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    """Start, load, sample, summarise, stop."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "pg"], default="pg")
    parser.add_argument("--workload", default="log_metric")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--search-runs", type=int, default=2000)
    parser.add_argument("--server", choices=["daphne", "uvicorn"], default="daphne")
    args = parser.parse_args()
    if not PYSPY.exists():
        raise SystemExit(f"py-spy not found at {PYSPY}; pip install py-spy into var/bench/tools-venv")
    managed = servers.start("ours", args.backend, server=args.server)
    out = servers.BENCH_VAR / f"profile-{args.workload}.txt"
    try:
        target = Target("ours", managed.url, managed.headers, native=True)
        sizes = Sizes(search_runs=args.search_runs, seed_clients=4)
        bench = Bench(target, sizes, progress=Progress())
        if args.workload in {"get_run", "search", "native_get_run"}:
            seed_search_runs(bench)
        stop = threading.Event()
        counter: list[int] = []
        thread = threading.Thread(target=lambda: counter.append(_driver(bench, args.workload, stop)), daemon=True)
        thread.start()
        time.sleep(2)
        pid = managed.process.pid
        subprocess.run(
            [
                str(PYSPY),
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(args.seconds),
                "--format",
                "raw",
                "--output",
                str(out),
                "--rate",
                "200",
                "--subprocesses",
                "--nonblocking",
            ],
            check=True,
            capture_output=True,
        )
        stop.set()
        thread.join(timeout=30)
    finally:
        managed.stop()
    print(f"{counter[0] if counter else '?'} requests in ~{args.seconds + 2}s; stacks: {out}")
    print(summarise(out.read_text()))


if __name__ == "__main__":
    main()
