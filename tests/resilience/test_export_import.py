"""``export_experiment`` / ``import_experiment`` round-trip an experiment exactly, artifacts included."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from accounts.tests.factories import TeamFactory, UserFactory
from experiments import services
from experiments.artifacts import artifact_files, artifact_open, artifact_write, run_artifact_dir
from experiments.models import Experiment, LatestMetric, Metric, Run

pytestmark = pytest.mark.django_db


def snapshot(experiment: Experiment) -> dict:
    """Everything an experiment holds, without database ids (NaN as a string so equality works)."""

    def value(point) -> str:
        return repr(point.float_value)

    runs = {}
    for run in Run.objects.filter(experiment=experiment).order_by("run_uuid"):
        folder = run_artifact_dir(run)
        files = (
            {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
            if folder.is_dir()
            else {}
        )
        runs[run.run_uuid] = {
            "fields": (run.name, run.status, run.start_time, run.end_time, run.lifecycle_stage, run.locked),
            "seq": run.last_seq,
            "user": run.user_id,
            "params": dict(run.params.values_list("key", "value")),
            "tags": dict(run.tags.values_list("key", "value")),
            "history": [
                (m.key, value(m), m.timestamp, m.step, m.seq) for m in Metric.objects.filter(run=run).order_by("id")
            ],
            "latest": [(m.key, value(m), m.timestamp, m.step) for m in LatestMetric.objects.filter(run=run)],
            "artifacts": files,
        }
    return {
        "experiment": (experiment.description, experiment.lifecycle_stage),
        "tags": dict(experiment.tags.values_list("key", "value")),
        "runs": runs,
    }


@pytest.fixture
def rich_experiment(workspace):
    """An experiment with tags, several runs (one deleted, one finished), NaN/inf metrics, params and artifacts."""
    editor, admin, experiment = workspace.editor, workspace.admin, workspace.experiment
    services.experiment_set_tag(user=editor, experiment=experiment, key="owner", value="vision <team>")
    first = workspace.run
    services.log_batch(
        user=editor,
        run=first,
        metrics=[
            {"key": "loss", "value": 1 / (step + 1), "step": step, "timestamp": 1000 + step} for step in range(500)
        ]
        + [
            {"key": "odd", "value": v, "step": i, "timestamp": 5}
            for i, v in enumerate(["NaN", "Infinity", "-Infinity"])
        ],
        params=[{"key": "lr", "value": "0.01"}, {"key": "unicode", "value": "名前 🚀 \u202e"}],
        tags=[{"key": "note", "value": "x" * 8000}],
    )
    artifact_write(user=editor, run=first, path="model/weights.bin", stream=io.BytesIO(os.urandom(4096)))
    artifact_write(user=editor, run=first, path="plots/a b/ü.png", stream=io.BytesIO(b"\x89PNG..."))
    second = services.run_create(user=editor, experiment=experiment, name="second")
    services.log_metric(user=editor, run=second, key="acc", value=0.5, step=3, timestamp=9)
    services.run_update(user=editor, run=second, status="FINISHED", end_time=99)
    third = services.run_create(user=editor, experiment=experiment, name="deleted one")
    services.run_delete(user=admin, run=third)
    return experiment


def test_round_trip_into_another_team_is_exact(rich_experiment, workspace, tmp_path) -> None:
    before = snapshot(rich_experiment)
    output = io.StringIO()
    call_command("export_experiment", rich_experiment.pk, tmp_path / "backup", stdout=output)
    assert "3 runs, 504 metric points, 2 artifact files" in output.getvalue()

    # Move: hard-delete the original (its runs and files go), then restore from the backup.
    services.experiment_hard_delete(user=UserFactory(is_superuser=True), experiment=rich_experiment)
    assert not Run.objects.exists()
    target = TeamFactory(name="restored")
    call_command("import_experiment", tmp_path / "backup", "--team", target.slug, stdout=output)
    assert "Imported experiment" in output.getvalue() and "metric points: 504" in output.getvalue()

    restored = Experiment.objects.get(team=target)
    assert restored.name == "resilience-experiment"
    assert restored.artifact_location == f"mlflow-artifacts:/{restored.pk}"
    assert snapshot(restored) == before
    nan_point = Metric.objects.get(key="odd", step=0)
    assert math.isnan(nan_point.float_value)


def test_import_next_to_the_original_needs_new_run_ids(rich_experiment, tmp_path) -> None:
    call_command("export_experiment", rich_experiment.pk, tmp_path / "backup", stdout=io.StringIO())
    with pytest.raises(CommandError, match="already has an experiment named"):
        call_command("import_experiment", tmp_path / "backup", stdout=io.StringIO())
    with pytest.raises(CommandError, match="--new-run-ids"):
        call_command("import_experiment", tmp_path / "backup", "--name", "copy", stdout=io.StringIO())
    assert Experiment.objects.count() == 1

    call_command("import_experiment", tmp_path / "backup", "--name", "copy", "--new-run-ids", stdout=io.StringIO())
    copy = Experiment.objects.get(name="copy")
    original, copied = snapshot(rich_experiment), snapshot(copy)
    assert sorted(map(str, original["runs"].values())) == sorted(map(str, copied["runs"].values()))
    assert set(original["runs"]).isdisjoint(copied["runs"])


def test_a_broken_export_imports_nothing(rich_experiment, workspace, tmp_path) -> None:
    call_command("export_experiment", rich_experiment.pk, tmp_path / "backup", stdout=io.StringIO())
    with (tmp_path / "backup" / "metrics.jsonl").open("a") as handle:
        handle.write("{not json\n")
    with pytest.raises(CommandError, match=r"metrics\.jsonl line 505"):
        call_command("import_experiment", tmp_path / "backup", "--name", "broken", "--new-run-ids")
    assert not Experiment.objects.filter(name="broken").exists()
    assert Run.objects.count() == 3
    assert len(list(Path(run_artifact_dir(workspace.run)).parents[2].iterdir())) == 1  # only the original's folder


def test_export_skips_symlinks_and_refuses_a_non_empty_folder(rich_experiment, workspace, tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not back me up")
    (run_artifact_dir(workspace.run) / "link").symlink_to(secret)
    call_command("export_experiment", rich_experiment.pk, tmp_path / "backup", stdout=io.StringIO())
    exported = tmp_path / "backup" / "artifacts" / workspace.run.run_uuid
    assert not (exported / "link").exists()
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["counts"] == {"runs": 3, "metrics": 504, "artifacts": 2}
    with pytest.raises(CommandError, match="not empty"):
        call_command("export_experiment", rich_experiment.pk, tmp_path / "backup")


def test_export_of_an_unknown_experiment_is_an_error(db, tmp_path) -> None:
    with pytest.raises(CommandError, match="does not exist"):
        call_command("export_experiment", 999_999, tmp_path / "x")


def stored_artifacts(experiment: Experiment) -> dict[str, dict[str, bytes]]:
    """Each run's artifact files, read through ``experiments.artifacts`` (whatever the storage)."""
    found = {}
    for run in Run.objects.filter(experiment=experiment).order_by("run_uuid"):
        files = {}
        for path in artifact_files(run):
            with artifact_open(run, path).file as handle:
                files[path] = handle.read()
        found[run.run_uuid] = files
    return found


def test_round_trip_through_a_non_filesystem_storage(
    memory_artifact_storage, rich_experiment, workspace, tmp_path, settings, django_capture_on_commit_callbacks
) -> None:
    before = stored_artifacts(rich_experiment)
    assert sorted(before[workspace.run.run_uuid]) == ["model/weights.bin", "plots/a b/ü.png"]
    output = io.StringIO()
    call_command("export_experiment", rich_experiment.pk, tmp_path / "backup", stdout=output)
    assert "artifact files: 2" in output.getvalue()
    exported = tmp_path / "backup" / "artifacts" / workspace.run.run_uuid / "plots" / "a b" / "ü.png"
    assert exported.read_bytes() == b"\x89PNG..."

    with django_capture_on_commit_callbacks(execute=True):
        services.experiment_hard_delete(user=UserFactory(is_superuser=True), experiment=rich_experiment)
    assert memory_artifact_storage.listdir("") == ([], [])
    call_command("import_experiment", tmp_path / "backup", "--team", TeamFactory(name="restored").slug, stdout=output)
    assert "artifact files: 2 (store: django.core.files.storage.memory.InMemoryStorage)" in output.getvalue()
    restored = Experiment.objects.get(name="resilience-experiment")
    assert stored_artifacts(restored) == before
    assert not any(path.is_file() for path in Path(settings.ARTIFACT_ROOT).rglob("*"))
