"""``manage.py import_experiment <dir>``: restore an experiment written by ``export_experiment``.

The experiment is recreated in its original team (``--team`` picks another, by slug) under its original
name (``--name`` renames it), with every run keeping its id, status, times, params, tags, full metric history
(sequence numbers included) and artifact files, so an export/import round trip is exact. Run ids are global:
importing next to the original needs ``--new-run-ids``.

This is an operator's restore, not a client write: it bypasses the logging services (their limits, events
and sequence bumps) and inserts rows in bulk inside one transaction, so a failed import leaves nothing behind
(artifact files copied before a failure are removed again).
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import Team, User
from experiments import artifacts
from experiments.management.commands.export_experiment import FORMAT_VERSION
from experiments.models import Experiment, ExperimentTag, LatestMetric, Metric, Param, Run, RunTag

BATCH = 5_000
PROGRESS_EVERY = 100_000
DEFAULT_LOCATION = "mlflow-artifacts:/"


def decode_value(value: float | str) -> tuple[float, bool]:
    """(value, is_nan) as stored: NaN is ``is_nan=True`` with 0, infinities are floats."""
    number = float(value)
    return (0.0, True) if math.isnan(number) else (number, False)


def exported_files(folder: Path) -> Iterator[str]:
    """The regular files below an exported run folder, as sorted ``/``-separated paths; symlinks are skipped."""
    for current, directories, names in os.walk(folder):  # followlinks=False: linked folders are not entered
        directories.sort()
        base = Path(current)
        for name in sorted(names):
            path = base / name
            if not path.is_symlink() and path.is_file():
                yield path.relative_to(folder).as_posix()


def read_lines(path: Path) -> Iterator[Any]:
    """Decode a JSON-lines file, naming the line that is broken."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                yield json.loads(line)
            except ValueError as exc:
                raise CommandError(f"{path.name} line {number} is not valid JSON: {exc}") from exc


class Command(BaseCommand):
    """Recreate an exported experiment, its runs, metric history and artifacts."""

    help = "Import an experiment exported with export_experiment (one transaction; nothing is left on failure)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument("--team", help="Slug of the team to import into (default: the exported team).")
        parser.add_argument("--name", help="Name for the imported experiment (default: the exported name).")
        parser.add_argument("--new-run-ids", action="store_true", help="Give every run a fresh id.")

    def handle(self, *args: Any, directory: Path, **options: Any) -> None:
        """Import, printing progress."""
        manifest = self.manifest(directory)
        exported = manifest["experiment"]
        team_slug = options["team"] or exported["team"]
        team = Team.objects.filter(slug=team_slug).first()
        if team is None:
            raise CommandError(f"Team {team_slug!r} does not exist; create it or pass --team.")
        name = options["name"] or exported["name"]
        if Experiment.objects.filter(team=team, name=name).exists():
            raise CommandError(f"Team {team.slug!r} already has an experiment named {name!r}; pass --name.")
        copied: list[Run] = []
        try:
            with transaction.atomic():
                experiment = self.restore(directory, manifest, team, name, options["new_run_ids"], copied)
        except BaseException:
            for run in copied:
                artifacts.delete_run_artifacts(run)
            raise
        counts = manifest["counts"]
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported experiment {experiment.pk} ({name!r}) into team {team.slug!r}: {counts['runs']} runs, "
                f"{counts['metrics']} metric points, {counts['artifacts']} artifact files."
            )
        )

    def manifest(self, directory: Path) -> dict[str, Any]:
        """Read and check the manifest."""
        path = directory / "manifest.json"
        if not path.is_file():
            raise CommandError(f"{directory} has no manifest.json; is it an export_experiment folder?")
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest.get("format") != "mlplatform-experiment" or manifest.get("version") != FORMAT_VERSION:
            raise CommandError(f"Unsupported export format {manifest.get('format')!r} v{manifest.get('version')}.")
        return manifest

    def restore(
        self, directory: Path, manifest: dict[str, Any], team: Team, name: str, new_ids: bool, copied: list[Run]
    ) -> Experiment:
        """Insert every row and copy the artifacts; raises on any conflict (rolling back)."""
        exported = manifest["experiment"]
        experiment = Experiment.objects.create(
            team=team, name=name, description=exported["description"], lifecycle_stage=exported["lifecycle_stage"]
        )
        location = exported["artifact_location"]
        if not location or location == f"{DEFAULT_LOCATION}{exported['id']}":
            location = f"{DEFAULT_LOCATION}{experiment.pk}"
        experiment.artifact_location = location
        experiment.save(update_fields=["artifact_location"])
        ExperimentTag.objects.bulk_create(
            [ExperimentTag(experiment=experiment, key=key, value=value) for key, value in exported["tags"].items()]
        )

        records = list(read_lines(directory / "runs.jsonl"))
        ids = {record["run_uuid"]: (uuid.uuid4().hex if new_ids else record["run_uuid"]) for record in records}
        taken = list(Run.objects.filter(run_uuid__in=list(ids.values())).values_list("run_uuid", flat=True))
        if taken:
            raise CommandError(f"Run ids already exist here ({', '.join(taken[:3])}...); pass --new-run-ids.")
        users = {user.username: user for user in User.objects.filter(username__in={r["user"] for r in records})}
        runs = Run.objects.bulk_create([self.run(record, ids, experiment, users) for record in records])
        run_pk = {run.run_uuid: run.pk for run in runs}
        Param.objects.bulk_create(
            [Param(run_id=run_pk[ids[r["run_uuid"]]], key=k, value=v) for r in records for k, v in r["params"].items()],
            batch_size=BATCH,
        )
        RunTag.objects.bulk_create(
            [RunTag(run_id=run_pk[ids[r["run_uuid"]]], key=k, value=v) for r in records for k, v in r["tags"].items()],
            batch_size=BATCH,
        )
        self.stdout.write(f"runs: {len(runs)}")
        self.restore_metrics(directory, ids, run_pk)
        self.restore_artifacts(directory, ids, runs, copied)
        return experiment

    def run(self, record: dict[str, Any], ids: dict[str, str], experiment: Experiment, users: dict) -> Run:
        """An unsaved Run for one exported record."""
        run_uuid = ids[record["run_uuid"]]
        artifact_uri = record["artifact_uri"]
        if artifact_uri.startswith(DEFAULT_LOCATION):
            artifact_uri = f"{experiment.artifact_location.rstrip('/')}/{run_uuid}/artifacts"
        return Run(
            run_uuid=run_uuid,
            experiment=experiment,
            team_id=experiment.team_id,
            name=record["name"],
            user=users.get(record["user"]),
            status=record["status"],
            start_time=record["start_time"],
            end_time=record["end_time"],
            lifecycle_stage=record["lifecycle_stage"],
            artifact_uri=artifact_uri,
            locked=record["locked"],
            last_seq=record["last_seq"],
        )

    def restore_metrics(self, directory: Path, ids: dict[str, str], run_pk: dict[str, int]) -> None:
        """Bulk-insert the history and the latest values in batches."""
        batch: list[Metric] = []
        count = 0
        for run_uuid, key, raw, timestamp, step, seq in read_lines(directory / "metrics.jsonl"):
            value, is_nan = decode_value(raw)
            batch.append(
                Metric(
                    run_id=run_pk[ids[run_uuid]],
                    key=key,
                    value=value,
                    is_nan=is_nan,
                    timestamp=timestamp,
                    step=step,
                    seq=seq,
                )
            )
            if len(batch) >= BATCH:
                Metric.objects.bulk_create(batch)
                count += len(batch)
                batch = []
                if count % PROGRESS_EVERY < BATCH:
                    self.stdout.write(f"metric points: {count}")
        Metric.objects.bulk_create(batch)
        self.stdout.write(f"metric points: {count + len(batch)}")
        latest = []
        for run_uuid, key, raw, timestamp, step in read_lines(directory / "latest_metrics.jsonl"):
            value, is_nan = decode_value(raw)
            latest.append(
                LatestMetric(
                    run_id=run_pk[ids[run_uuid]], key=key, value=value, is_nan=is_nan, timestamp=timestamp, step=step
                )
            )
        LatestMetric.objects.bulk_create(latest, batch_size=BATCH)

    def restore_artifacts(self, directory: Path, ids: dict[str, str], runs: list[Run], copied: list[Run]) -> None:
        """Write each run's exported files into the artifact storage (symlinks in the export are not followed)."""
        by_uuid = {run.run_uuid: run for run in runs}
        files = 0
        source_root = directory / "artifacts"
        for exported_uuid, run_uuid in ids.items():
            source = source_root / exported_uuid
            if not source.is_dir() or source.is_symlink():
                continue
            run = by_uuid[run_uuid]
            if artifacts.artifacts_exist(run):
                raise CommandError(
                    f"Artifacts of run {run_uuid} already exist in the store "
                    f"({artifacts.run_artifact_name(run)}); refusing to overwrite them."
                )
            copied.append(run)
            for path in exported_files(source):
                with source.joinpath(*path.split("/")).open("rb") as handle:
                    artifacts.artifact_restore(run=run, path=path, stream=handle)
                files += 1
        self.stdout.write(f"artifact files: {files} (store: {artifacts.artifact_store_description()})")
