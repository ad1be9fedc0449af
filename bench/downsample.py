"""Time ``experiments.downsample.lttb_indices`` on synthetic series; print a table and write JSON.

Usage::

    python -m bench.downsample [--baseline PATH] [--repeat N]

``--baseline`` names another copy of the module (for instance ``git show c8066f5:experiments/downsample.py >
/tmp/old.py``) to time side by side. Results go to ``bench/results/<time>-downsample.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
MAX_POINTS = (1_000, 10_000)


def series() -> dict[str, np.ndarray]:
    """Shapes that stress LTTB differently: a walk, pure noise, a smooth curve with noise, and a long noise."""
    rng = np.random.default_rng(0)
    return {
        "walk 100k": np.cumsum(rng.normal(size=100_000)),
        "noise 100k": rng.normal(size=100_000),
        "smooth 100k": np.exp(-np.arange(100_000) / 3e4) + 0.01 * rng.normal(size=100_000),
        "noise 1M": rng.normal(size=1_000_000),
    }


def load(path: Path) -> ModuleType:
    """Import a copy of the downsample module from a file."""
    spec = importlib.util.spec_from_file_location(f"downsample_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def best_ms(module: ModuleType, x: np.ndarray, y: np.ndarray, max_points: int, repeat: int) -> float:
    """The fastest of ``repeat`` calls, in milliseconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        module.lttb_indices(x, y, max_points)
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def main(argv: list[str] | None = None) -> int:
    """Run every series and max_points, print the table, write the JSON file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="another copy of experiments/downsample.py to compare with")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from experiments import downsample as current

    modules = {"current": current}
    if args.baseline:
        modules = {"baseline": load(args.baseline), **modules}
    rows: list[dict[str, Any]] = []
    print(f"{'series':<14}{'max_points':>11}" + "".join(f"{name + ' ms':>14}" for name in modules))
    for name, y in series().items():
        x = np.arange(len(y), dtype=float)
        for max_points in MAX_POINTS:
            timings = {label: best_ms(module, x, y, max_points, args.repeat) for label, module in modules.items()}
            rows.append({"series": name, "max_points": max_points, **{f"{k}_ms": v for k, v in timings.items()}})
            print(f"{name:<14}{max_points:>11}" + "".join(f"{value:>14.1f}" for value in timings.values()))
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out = RESULTS_DIR / f"{stamp}-downsample.json"
    out.write_text(json.dumps({"at": stamp, "load": os.getloadavg()[0], "rows": rows}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
