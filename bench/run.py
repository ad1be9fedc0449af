"""Benchmark entry point: start a server, run the workloads, print a table, write JSON, stop the server.

    python -m bench.run --target ours|mlflow|fasttrackml --backend sqlite|pg [--size full|tiny]
    python -m bench.run --target ours --backend pg --server uvicorn --workers 2
    python -m bench.run --url http://127.0.0.1:8000 --token mlp_... --target ours   # an already running server

Results land in ``bench/results/<date>-<target>-<backend>.json`` (``--tag`` adds a suffix before
``.json``). See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report, servers
from bench.driver import Client, Stats
from bench.workloads import MODES, WORKLOADS, Bench, Progress, Sizes, Target, run_workloads


def machine_facts() -> dict[str, Any]:
    """Cores, memory, OS and the versions that matter."""

    def out(*command: str) -> str:
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    facts = {
        "nproc": out("nproc"),
        "memory": out("free", "-h").splitlines()[1] if out("free", "-h") else "",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgres": out("psql", "--version"),
        "loadavg": Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").exists() else "",
    }
    for name, venv in (("mlflow", servers.MLFLOW_VENV), ("fasttrackml", servers.FML_VENV)):
        found = sorted(venv.glob(f"lib/python*/site-packages/{name}-*.dist-info"))
        if found:
            facts[name] = found[-1].name.removesuffix(".dist-info").split("-", 1)[1]
    for name in ("daphne", "django", "uvicorn"):
        found = sorted(Path(sys.prefix).glob(f"lib/python*/site-packages/{name}-*.dist-info"))
        if found:
            facts[name] = found[-1].name.removesuffix(".dist-info").split("-", 1)[1]
    return facts


def calibrate(requests: int = 500) -> dict[str, Any]:
    """p50/p99 of an empty ASGI app under daphne, kept-alive, measured now (the machine's current floor)."""
    server = servers.start_empty_asgi()
    try:
        client = Client(server.url)
        for _ in range(20):
            client.get("/")
        stats = Stats()
        for _ in range(requests):
            stats.add(client.get("/").seconds)
        client.close()
    finally:
        server.stop()
    return {"empty_asgi_daphne": stats.summary(), "loadavg": Path("/proc/loadavg").read_text().split()[:3]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description="Benchmark a tracking server through the MLflow REST API.")
    parser.add_argument("--target", choices=["ours", "mlflow", "fasttrackml"], default="ours")
    parser.add_argument("--backend", choices=["sqlite", "pg"], default="sqlite")
    parser.add_argument("--size", choices=["full", "tiny"], default="full")
    parser.add_argument("--server", choices=["daphne", "uvicorn"], default="daphne", help="ASGI server (ours)")
    parser.add_argument("--workers", type=int, default=1, help="server processes on one port (ours)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma-separated subset of {list(WORKLOADS)}")
    parser.add_argument("--modes", default=",".join(MODES), help="keepalive,close or one of them")
    parser.add_argument("--search-runs", type=int, help="override the number of runs seeded for search")
    parser.add_argument(
        "--seed",
        choices=["api", "store"],
        default="api",
        help="seed search runs through the MLflow API (default) or in-process through the server's own store",
    )
    parser.add_argument("--url", help="measure an already running server instead of starting one")
    parser.add_argument("--token", help="API token for --url (ours)")
    parser.add_argument("--tag", default="", help="suffix for the result file name")
    parser.add_argument("--strict", action="store_true", help="stop at the first failing workload")
    parser.add_argument("--no-calibration", action="store_true", help="skip the empty-ASGI-app baseline")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    """Run the benchmark; returns the result file written."""
    args = parse_args(argv)
    sizes = Sizes.tiny() if args.size == "tiny" else Sizes.full()
    if args.search_runs:
        sizes = Sizes(**{**sizes.__dict__, "search_runs": args.search_runs})
    progress = Progress(quiet=args.quiet)
    started_at = datetime.now(UTC)
    calibration = {} if args.no_calibration else calibrate()
    if calibration:
        floor = calibration["empty_asgi_daphne"]
        progress.stage(f"calibration: empty ASGI app under daphne p50 {floor['p50_ms']} ms, p99 {floor['p99_ms']} ms")
    managed = None
    if args.url:
        headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
        target = Target(args.target, args.url.rstrip("/"), headers, native=args.target == "ours")
        description = {"server": "external", "url": args.url}
    else:
        progress.stage(f"starting {args.target} on {args.backend}")
        managed = servers.start(args.target, args.backend, server=args.server, workers=args.workers)
        target = Target(
            args.target,
            managed.url,
            managed.headers,
            memory=managed.memory,
            cpu=managed.cpu_seconds,
            native=args.target == "ours",
            seed_search=managed.seed if args.seed == "store" else None,
            after_seed=managed.analyze,
        )
        description = managed.description
        progress.stage(f"{args.target} is up at {managed.url} ({description})")
    try:
        bench = Bench(target, sizes, modes=tuple(args.modes.split(",")), progress=progress)
        clock = time.perf_counter()
        rows = run_workloads(bench, args.workloads.split(","), keep_going=not args.strict)
        seconds = time.perf_counter() - clock
    finally:
        if managed is not None:
            progress.stage(f"stopping {args.target}")
            managed.stop()
    result = {
        "target": args.target,
        "backend": args.backend,
        "size": args.size,
        "server": description,
        "started_at": started_at.isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "command": " ".join([Path(sys.executable).name, "-m", "bench.run", *(argv or sys.argv[1:])]),
        "machine": machine_facts(),
        "calibration": calibration,
        "sizes": sizes.__dict__,
        "measurements": [row.as_dict() for row in rows],
        "details": bench.details,
        "errors": bench.errors,
    }
    report.RESULTS_DIR.mkdir(exist_ok=True)
    suffix = f"-{args.tag}" if args.tag else ""
    path = report.RESULTS_DIR / f"{started_at:%Y%m%d-%H%M%S}-{args.target}-{args.backend}{suffix}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"\n{args.target} on {args.backend} ({description}), {seconds:.0f}s")
    if calibration:
        floor = calibration["empty_asgi_daphne"]
        print(f"machine floor now: empty ASGI app under daphne p50 {floor['p50_ms']} ms (about 1.2 ms when idle)")
    print()
    print(report.single_table(result))
    for name, error in bench.errors.items():
        print(f"FAILED {name}: {error}")
    print(f"\nwritten: {path.relative_to(servers.ROOT) if path.is_relative_to(servers.ROOT) else path}")
    if bench.errors:
        raise SystemExit(1)
    return path


if __name__ == "__main__":
    # SIGTERM (e.g. from a CI timeout) unwinds like Ctrl-C, so the server started here is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    main()
