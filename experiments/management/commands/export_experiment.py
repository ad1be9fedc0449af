"""``manage.py export_experiment <id> <dir>``: back up one experiment as JSON lines plus its artifact files.

Layout of ``<dir>`` (read back by ``import_experiment``):

- ``manifest.json``: format version, the experiment (name, description, team slug, stage, tags) and counts;
- ``runs.jsonl``: one run per line with its params and tags;
- ``metrics.jsonl``: one metric point per line (full history, in insertion order);
- ``latest_metrics.jsonl``: each run's latest value per key;
- ``artifacts/<run id>/...``: the runs' artifact files, byte for byte.

Non-finite values are written as the strings "NaN", "Infinity" and "-Infinity" (JSON has no such numbers).
Everything is read inside one repeatable snapshot (a transaction), so a backup taken while clients log is
consistent; history is streamed with ``iterator()`` and never held in memory.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from experiments import artifacts
from experiments.models import Experiment, LatestMetric, Metric, Run
from mlplatform.nonfinite import encode_float

FORMAT_VERSION = 1
PROGRESS_EVERY = 100_000


def run_record(run: Run) -> dict[str, Any]:
    """One run as exported: its own fields plus params and tags."""
    return {
        "run_uuid": run.run_uuid,
        "name": run.name,
        "user": run.user.username if run.user_id else None,
        "status": run.status,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "lifecycle_stage": run.lifecycle_stage,
        "artifact_uri": run.artifact_uri,
        "locked": run.locked,
        "last_seq": run.last_seq,
        "params": {param.key: param.value for param in run.params.all()},
        "tags": {tag.key: tag.value for tag in run.tags.all()},
    }


def point_value(point: Metric | LatestMetric) -> float | str:
    """The value as JSON can carry it."""
    return encode_float(point.float_value)


class Command(BaseCommand):
    """Write one experiment, its runs, full metric history and artifacts to a folder."""

    help = "Export an experiment (runs, params, tags, metric history, artifacts) to a folder of JSON lines."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("experiment_id", type=int)
        parser.add_argument("directory", type=Path, help="Target folder (created; must be empty if it exists).")

    def handle(self, *args: Any, experiment_id: int, directory: Path, **options: Any) -> None:
        """Export, printing progress."""
        experiment = Experiment.objects.select_related("team").filter(pk=experiment_id).first()
        if experiment is None:
            raise CommandError(f"Experiment {experiment_id} does not exist.")
        if directory.exists() and any(directory.iterdir()):
            raise CommandError(f"{directory} is not empty; export into a new folder.")
        directory.mkdir(parents=True, exist_ok=True)
        with transaction.atomic():  # one snapshot for every table (PostgreSQL: the whole export sees one state)
            counts = self.export(experiment, directory)
        self.stdout.write(
            self.style.SUCCESS(
                f"Exported experiment {experiment.pk} ({experiment.name!r}): {counts['runs']} runs, "
                f"{counts['metrics']} metric points, {counts['artifacts']} artifact files -> {directory}"
            )
        )

    def export(self, experiment: Experiment, directory: Path) -> dict[str, int]:
        """Write every file; returns the counts recorded in the manifest."""
        runs = list(
            Run.objects.filter(experiment=experiment)
            .select_related("user")
            .prefetch_related("params", "tags")
            .order_by("start_time", "id")
        )
        with (directory / "runs.jsonl").open("w", encoding="utf-8") as handle:
            for run in runs:
                handle.write(json.dumps(run_record(run), ensure_ascii=False) + "\n")
        self.stdout.write(f"runs: {len(runs)}")

        run_uuid = {run.pk: run.run_uuid for run in runs}
        metrics = 0
        with (directory / "metrics.jsonl").open("w", encoding="utf-8") as handle:
            history = Metric.objects.filter(run__experiment=experiment).order_by("run_id", "id")
            for point in history.iterator(chunk_size=10_000):
                row = [run_uuid[point.run_id], point.key, point_value(point), point.timestamp, point.step, point.seq]
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                metrics += 1
                if metrics % PROGRESS_EVERY == 0:
                    self.stdout.write(f"metric points: {metrics}")
        self.stdout.write(f"metric points: {metrics}")

        with (directory / "latest_metrics.jsonl").open("w", encoding="utf-8") as handle:
            for point in LatestMetric.objects.filter(run__experiment=experiment).order_by("run_id", "key"):
                row = [run_uuid[point.run_id], point.key, point_value(point), point.timestamp, point.step]
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")

        files = sum(self.export_artifacts(run, directory / "artifacts" / run.run_uuid) for run in runs)
        self.stdout.write(f"artifact files: {files}")

        counts = {"runs": len(runs), "metrics": metrics, "artifacts": files}
        manifest = {
            "format": "mlplatform-experiment",
            "version": FORMAT_VERSION,
            "experiment": {
                "id": experiment.pk,
                "name": experiment.name,
                "description": experiment.description,
                "team": experiment.team.slug,
                "lifecycle_stage": experiment.lifecycle_stage,
                "artifact_location": experiment.artifact_location,
                "tags": {tag.key: tag.value for tag in experiment.tags.all()},
            },
            "counts": counts,
        }
        (directory / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        return counts

    def export_artifacts(self, run: Run, target: Path) -> int:
        """Copy a run's artifact files out of the artifact storage, byte for byte; return how many.

        The storage is walked through ``experiments.artifacts`` (any backend); on disk, symlinks (they
        could point outside the store) and unfinished uploads are skipped.
        """
        files = 0
        for path in artifacts.artifact_files(run):
            opened = artifacts.artifact_open(run, path)
            destination = target.joinpath(*path.split("/"))
            destination.parent.mkdir(parents=True, exist_ok=True)
            with opened.file as source, destination.open("wb") as handle:
                shutil.copyfileobj(source, handle, artifacts.CHUNK_SIZE)
            files += 1
        return files
