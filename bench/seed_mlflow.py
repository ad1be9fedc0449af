"""Seed the search workload's runs into MLflow's database through MLflow's own store, in-process.

Runs with the MLflow venv's Python (``var/bench/mlflow-venv/bin/python -m bench.seed_mlflow``):
``SqlAlchemyStore.create_run`` + ``log_batch`` per run, the same code path the server's handlers call,
without HTTP. Prints ``{"experiment_id": ..., "run_ids": [...]}``.
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.seeddata import BASE_TIMESTAMP, seed_values


def main() -> None:
    """Create the experiment and ``--runs`` runs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", required=True, help="backend store URI, as given to mlflow server")
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(args.store, args.artifacts)
    experiment_id = store.create_experiment(args.name)
    run_ids = []
    for i in range(args.runs):
        acc, loss, lr, batch = seed_values(i)
        ts = BASE_TIMESTAMP + i
        run = store.create_run(experiment_id, "bench", ts, [RunTag("squad", f"squad-{i % 7}")], f"run-{i}")
        run_id = run.info.run_id
        store.log_batch(
            run_id,
            metrics=[Metric("acc", acc, ts, 0), Metric("loss", loss, ts, 0)],
            params=[Param("lr", lr), Param("batch_size", batch)],
            tags=[],
        )
        run_ids.append(run_id)
        if i % 1000 == 999:
            print(f"    runs seeded: {i + 1}/{args.runs}", file=sys.stderr, flush=True)
    print(json.dumps({"experiment_id": str(experiment_id), "run_ids": run_ids}))


if __name__ == "__main__":
    main()
