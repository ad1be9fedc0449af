"""Log a run with 10 params and 3 metrics x 1000 steps through the native API, then read it back.

Usage::

    python bench/demo_native_api.py [BASE_URL] [TOKEN]

``BASE_URL`` defaults to ``$MLPLATFORM_URL`` or http://127.0.0.1:8000; ``TOKEN`` (a personal API
token, sent as ``Authorization: Bearer``) defaults to ``$MLPLATFORM_TOKEN``. Only the standard
library is used. Exits non-zero if what is read back differs from what was logged.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

PARAMS = {f"param_{i}": str(i * 0.1) for i in range(10)}
METRICS = {
    "loss": lambda step: math.exp(-step / 300),
    "accuracy": lambda step: 1 - math.exp(-step / 200),
    "learning_rate": lambda step: 0.1 * 0.999**step,
}
STEPS = 1000


class Api:
    """A tiny JSON client for the native API."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base = base_url.rstrip("/") + "/api/v1/"
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        """Send one request; raise with the server's error envelope on a non-2xx answer."""
        url = path if path.startswith("http") else self.base + path
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise SystemExit(f"{method} {url} -> {exc.code}: {exc.read().decode(errors='replace')}") from exc
        except urllib.error.URLError as exc:
            raise SystemExit(f"cannot reach {url}: {exc.reason}") from exc
        return json.loads(raw) if raw else None


def log_run(api: Api) -> tuple[str, float]:
    """Create an experiment and a run, log everything, finish the run; return (run id, seconds spent logging)."""
    experiment = api.call("POST", "experiments/", {"name": f"demo native api {time.time():.0f}"})
    run = api.call("POST", "runs/", {"experiment_id": experiment["id"], "name": "demo-run"})
    run_id = run["run_id"]
    started = time.perf_counter()
    api.call("POST", f"runs/{run_id}/log-batch/", {"params": [{"key": k, "value": v} for k, v in PARAMS.items()]})
    now = int(time.time() * 1000)
    for key, curve in METRICS.items():  # one batch per key: 1000 points, MLflow's per-batch limit
        points = [{"key": key, "value": curve(step), "timestamp": now + step, "step": step} for step in range(STEPS)]
        api.call("POST", f"runs/{run_id}/log-batch/", {"metrics": points})
    api.call("PATCH", f"runs/{run_id}/", {"status": "FINISHED", "end_time": int(time.time() * 1000)})
    return run_id, time.perf_counter() - started


def read_back(api: Api, run_id: str) -> list[str]:
    """Read the run and every full history back; return a list of mismatches (empty when all is well)."""
    problems = []
    run = api.call("GET", f"runs/{run_id}/")
    if run["params"] != PARAMS:
        problems.append(f"params differ: {run['params']}")
    if run["status"] != "FINISHED":
        problems.append(f"status is {run['status']}")
    for key, curve in METRICS.items():
        latest = run["metrics"].get(key, {})
        if latest.get("step") != STEPS - 1 or not math.isclose(latest.get("value", math.nan), curve(STEPS - 1)):
            problems.append(f"latest {key} is {latest}")
        points: list[dict[str, Any]] = []
        page = api.call("GET", f"runs/{run_id}/metrics/{key}/history/", query={"page_size": 400})
        points.extend(page["points"])
        while page["next"]:
            page = api.call("GET", page["next"])
            points.extend(page["points"])
        if [p["step"] for p in points] != list(range(STEPS)):
            problems.append(f"{key}: history has {len(points)} points, not steps 0..{STEPS - 1}")
        elif any(not math.isclose(p["value"], curve(p["step"])) for p in points):
            problems.append(f"{key}: values differ")
        sampled = api.call("GET", f"runs/{run_id}/metrics/{key}/history/", query={"max_points": 100})["points"]
        if len(sampled) > 100 or sampled[0]["step"] != 0 or sampled[-1]["step"] != STEPS - 1:
            problems.append(f"{key}: downsampled history is wrong ({len(sampled)} points)")
    found = api.call("GET", "runs/", query={"experiment_id": run["experiment_id"], "filter": "metrics.accuracy > 0.9"})
    if [r["run_id"] for r in found["results"]] != [run_id]:
        problems.append("search by metrics.accuracy > 0.9 did not find the run")
    return problems


def main(argv: list[str]) -> int:
    """Run the demo and print a short table."""
    base_url = argv[1] if len(argv) > 1 else os.environ.get("MLPLATFORM_URL", "http://127.0.0.1:8000")
    token = argv[2] if len(argv) > 2 else os.environ.get("MLPLATFORM_TOKEN", "")
    if not token:
        print("usage: demo_native_api.py BASE_URL TOKEN   (or set MLPLATFORM_URL / MLPLATFORM_TOKEN)", file=sys.stderr)
        return 2
    api = Api(base_url, token)
    run_id, seconds = log_run(api)
    started = time.perf_counter()
    problems = read_back(api, run_id)
    read_seconds = time.perf_counter() - started
    points = len(METRICS) * STEPS
    print(f"{'run':<12}{run_id}")
    print(f"{'params':<12}{len(PARAMS)}")
    print(f"{'metrics':<12}{len(METRICS)} x {STEPS} steps = {points} points")
    print(f"{'log time':<12}{seconds:.2f} s ({points / seconds:,.0f} points/s)")
    print(f"{'read time':<12}{read_seconds:.2f} s")
    print(f"{'result':<12}{'OK' if not problems else 'MISMATCH'}")
    for problem in problems:
        print(f"  - {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
