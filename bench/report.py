"""Tables for one result file, and side-by-side comparisons of several (``python -m bench.report``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# The targets for our server (PostgreSQL backend), by measurement id: (comparison, value).
TARGETS: dict[str, tuple[str, float]] = {
    "log_metric.p50": ("<=", 2.0),
    "log_metric.p99": ("<=", 10.0),
    "ingest.points_per_s": (">=", 150_000),
    "history.full_p50": ("<=", 200.0),
    "history.native_sampled_p50": ("<=", 20.0),
    "search.p50": ("<=", 50.0),
    "get_run.p50": ("<=", 2.0),
    "native_reads.p99_worst": ("<", 200.0),
}


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if unit in {"pts/s", "req/s"}:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def target_verdict(measurement_id: str, value: float | None) -> str:
    """'met', 'MISSED' or '' (no target) for one of our numbers."""
    if measurement_id not in TARGETS or value is None:
        return ""
    op, limit = TARGETS[measurement_id]
    ok = {"<=": value <= limit, ">=": value >= limit, "<": value < limit}[op]
    return f"{'met' if ok else 'MISSED'} ({op} {limit:g})"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True))]
    lines.append("-|-".join("-" * w for w in widths))
    for row in rows:
        lines.append(" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(lines)


def single_table(result: dict[str, Any]) -> str:
    """One server's numbers per connection mode, best of both, and (ours) the target verdict."""
    ours = result["target"] == "ours"
    header = ["measurement", "unit", "keep-alive", "new conn.", "best"] + (["target"] if ours else [])
    rows = []
    for m in result["measurements"]:
        row = [
            m["label"],
            m["unit"],
            _fmt(m["values"].get("keepalive"), m["unit"]),
            _fmt(m["values"].get("close"), m["unit"]),
            _fmt(m["best"], m["unit"]),
        ]
        if ours:
            row.append(target_verdict(m["id"], m["best"]))
        rows.append(row)
    return _table(header, rows)


def compare_table(results: list[dict[str, Any]]) -> str:
    """Side by side: best value per server, and how many times better ours is (>1 = ours faster)."""
    names = [f"{r['target']} ({r['backend']})" for r in results]
    by_id: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for index, result in enumerate(results):
        for m in result["measurements"]:
            if m["id"] not in by_id:
                by_id[m["id"]] = {"label": m["label"], "unit": m["unit"], "better": m["better"], "values": {}}
                order.append(m["id"])
            by_id[m["id"]]["values"][index] = m["best"]
    ours_index = next((i for i, r in enumerate(results) if r["target"] == "ours"), None)
    header = ["measurement", "unit", *names]
    others = [i for i in range(len(results)) if i != ours_index]
    if ours_index is not None:
        header += [f"ours vs {results[i]['target']}" for i in others]
    rows = []
    for mid in order:
        entry = by_id[mid]
        row = [
            entry["label"],
            entry["unit"],
            *[_fmt(entry["values"].get(i), entry["unit"]) for i in range(len(results))],
        ]
        if ours_index is not None:
            mine = entry["values"].get(ours_index)
            for i in others:
                theirs = entry["values"].get(i)
                if not mine or not theirs:
                    row.append("")
                    continue
                ratio = theirs / mine if entry["better"] == "lower" else mine / theirs
                row.append(f"{ratio:.1f}x" if ratio >= 1 else f"{ratio:.2f}x")
        rows.append(row)
    return _table(header, rows)


def latest(target: str, backend: str, folder: Path | None = None) -> Path | None:
    """The newest result file for a target and backend, tagged (``--tag``) or not.

    Names start with the UTC date and time, so the newest sorts last.
    """
    folder = RESULTS_DIR if folder is None else folder
    files = [*folder.glob(f"*-{target}-{backend}.json"), *folder.glob(f"*-{target}-{backend}-*.json")]
    return max(files, key=lambda path: path.name) if files else None


def main() -> None:
    """Print the newest results of the given targets side by side."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="pg", choices=["sqlite", "pg"])
    parser.add_argument("--targets", default="ours,mlflow,fasttrackml")
    parser.add_argument("files", nargs="*", type=Path, help="result files (default: newest per target)")
    args = parser.parse_args()
    paths = args.files or [p for t in args.targets.split(",") if (p := latest(t, args.backend)) is not None]
    if not paths:
        raise SystemExit(f"no results in {RESULTS_DIR} for backend {args.backend}")
    results = [json.loads(p.read_text()) for p in paths]
    for path in paths:
        print(f"# {path.name}")
    print(compare_table(results))


if __name__ == "__main__":
    main()
