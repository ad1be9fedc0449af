"""Seed the search workload's runs straight into our database with bulk inserts (for 100k-run searches).

    python -m bench.seed_ours --runs 100000 --name bench-search-100k   # with the server's environment

The experiment is created through ``experiments.services``; runs and what they logged are written with
``bulk_create`` in chunks (the same rows ``run_create`` + ``log_batch`` write, without one transaction
per run). Prints ``{"experiment_id": ..., "run_ids": [...]}``.
"""

from __future__ import annotations

import argparse
import json
import os
import uuid

import django

from bench.seeddata import BASE_TIMESTAMP, seed_values

CHUNK = 5000


def main() -> None:
    """Create the experiment and ``--runs`` runs for the ``bench`` user."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--user", default="bench")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings")
    django.setup()
    from django.db import transaction

    from accounts.models import User
    from experiments.models import LatestMetric, Metric, Param, Run, RunTag
    from experiments.services import experiment_create

    user = User.objects.get(username=args.user)
    experiment = experiment_create(user=user, name=args.name)
    run_ids: list[str] = []
    for start in range(0, args.runs, CHUNK):
        indexes = range(start, min(args.runs, start + CHUNK))
        with transaction.atomic():
            runs = Run.objects.bulk_create(
                [
                    Run(
                        run_uuid=uuid.uuid4().hex,
                        experiment=experiment,
                        team_id=experiment.team_id,
                        name=f"run-{i}",
                        user=user,
                        start_time=BASE_TIMESTAMP + i,
                        artifact_uri=f"{experiment.artifact_location}/{i}/artifacts",
                        last_seq=2,
                    )
                    for i in indexes
                ]
            )
            if runs[0].pk is None:  # SQLite before RETURNING support: read the ids back
                by_uuid = dict(Run.objects.filter(experiment=experiment).values_list("run_uuid", "pk"))
                for run in runs:
                    run.pk = by_uuid[run.run_uuid]
            tags, params, latest, history = [], [], [], []
            for i, run in zip(indexes, runs, strict=True):
                acc, loss, lr, batch = seed_values(i)
                ts = BASE_TIMESTAMP + i
                tags += [
                    RunTag(run=run, key="mlflow.runName", value=run.name),
                    RunTag(run=run, key="squad", value=f"squad-{i % 7}"),
                ]
                params += [Param(run=run, key="lr", value=lr), Param(run=run, key="batch_size", value=batch)]
                for key, value in (("acc", acc), ("loss", loss)):
                    latest.append(LatestMetric(run=run, key=key, value=value, timestamp=ts, step=0))
                    history.append(Metric(run=run, key=key, value=value, timestamp=ts, step=0, seq=2))
            RunTag.objects.bulk_create(tags)
            Param.objects.bulk_create(params)
            LatestMetric.objects.bulk_create(latest)
            Metric.objects.bulk_create(history)
        run_ids += [run.run_uuid for run in runs]
    print(json.dumps({"experiment_id": str(experiment.pk), "run_ids": run_ids}))


if __name__ == "__main__":
    main()
