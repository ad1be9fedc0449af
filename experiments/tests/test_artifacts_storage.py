"""Artifacts go through Django's storage API: ``STORAGES["artifacts"]``.

The default store is ``ArtifactFileSystemStorage`` (``ARTIFACT_ROOT`` on disk, covered by test_artifacts.py).
Here the store is Django's ``InMemoryStorage`` (fixture ``memory_artifact_storage``), which exercises the
generic path every non-filesystem backend (S3 through django-storages) takes. Each test checks the bytes in
that storage *and* that nothing reached ``ARTIFACT_ROOT``, so code that bypassed the storage fails.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.storage import Storage, storages

from accounts.models import AuditEvent
from accounts.tests.factories import UserFactory
from experiments import artifacts, services
from experiments.models import Run
from experiments.storage import ArtifactFileSystemStorage
from experiments.tests.api import assert_error, url
from experiments.tests.factories import RunFactory
from mlplatform.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge


def stored(storage: Storage, folder: str) -> dict[str, bytes]:
    """Every file below ``folder`` in ``storage``, read through the storage itself."""
    found: dict[str, bytes] = {}

    def walk(name: str, prefix: str) -> None:
        try:
            directories, files = storage.listdir(name)
        except FileNotFoundError:
            return
        below = f"{name}/" if name else ""
        for file in files:
            with storage.open(f"{below}{file}", "rb") as handle:
                found[f"{prefix}{file}"] = handle.read()
        for directory in directories:
            walk(f"{below}{directory}", f"{prefix}{directory}/")

    walk(folder, "")
    return found


def run_files(storage: Storage, run: Run) -> dict[str, bytes]:
    """The files of one run, by artifact path."""
    return stored(storage, f"{run.experiment_id}/{run.run_uuid}/artifacts")


def disk_files(root: Path) -> list[Path]:
    """Anything written under ``ARTIFACT_ROOT`` (must stay empty when artifacts live in another storage)."""
    return list(root.rglob("*")) if root.exists() else []


def put(client, run, path, data=b"content"):
    return client.generic(
        "PUT", f"/api/v1/runs/{run.run_uuid}/artifacts/{path}", data, content_type="application/octet-stream"
    )


# The default store --------------------------------------------------------------------------------


def test_default_store_is_a_filesystem_storage_that_follows_artifact_root(settings, tmp_path):
    storage = artifacts.artifact_storage()
    assert storage is storages["artifacts"]
    assert isinstance(storage, ArtifactFileSystemStorage)
    settings.ARTIFACT_ROOT = tmp_path / "moved"
    assert storage.location == str(tmp_path / "moved")
    assert artifacts.artifact_store_description() == str(tmp_path / "moved")


def test_an_explicit_location_is_kept_when_artifact_root_changes(settings, tmp_path):
    storage = ArtifactFileSystemStorage(location=str(tmp_path / "fixed"))
    settings.ARTIFACT_ROOT = tmp_path / "elsewhere"
    assert storage.location == str(tmp_path / "fixed")


def test_a_plain_filesystem_storage_backend_is_used_with_its_own_location(settings, editor, run, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "artifacts": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "configured")},
        },
    }
    artifacts.artifact_write(user=editor, run=run, path="m/w.bin", stream=io.BytesIO(b"abc"))
    written = tmp_path / "configured" / str(run.experiment_id) / run.run_uuid / "artifacts" / "m" / "w.bin"
    assert written.read_bytes() == b"abc"


# Service functions on a generic storage --------------------------------------------------------------


def test_round_trip_nested_listing_with_sizes(memory_artifact_storage, editor, run, artifact_root):
    entry = artifacts.artifact_write(user=editor, run=run, path="model/weights.bin", stream=io.BytesIO(b"\0" * 3000))
    assert entry == {"path": "model/weights.bin", "is_dir": False, "file_size": 3000}
    artifacts.artifact_write(user=editor, run=run, path="model/deep/MLmodel", stream=io.BytesIO(b"flavors: {}"))
    artifacts.artifact_write(user=editor, run=run, path="notes.txt", stream=io.BytesIO(b"hello"))
    artifacts.artifact_write(user=editor, run=run, path="empty", stream=None)

    assert run_files(memory_artifact_storage, run) == {
        "model/weights.bin": b"\0" * 3000,
        "model/deep/MLmodel": b"flavors: {}",
        "notes.txt": b"hello",
        "empty": b"",
    }
    assert disk_files(artifact_root) == []
    assert artifacts.artifact_list(run) == [
        {"path": "empty", "is_dir": False, "file_size": 0},
        {"path": "model", "is_dir": True, "file_size": None},
        {"path": "notes.txt", "is_dir": False, "file_size": 5},
    ]
    assert artifacts.artifact_list(run, "model") == [
        {"path": "model/deep", "is_dir": True, "file_size": None},
        {"path": "model/weights.bin", "is_dir": False, "file_size": 3000},
    ]
    assert artifacts.artifact_list(run, "model/deep/") == [
        {"path": "model/deep/MLmodel", "is_dir": False, "file_size": 11}
    ]
    assert artifacts.artifact_list(run, "missing") == []
    assert artifacts.artifact_list(run, "notes.txt") == []

    opened = artifacts.artifact_open(run, "notes.txt")
    with opened.file:
        assert opened.file.read() == b"hello"
    assert (opened.size, opened.content_type, opened.name) == (5, "text/plain", "notes.txt")
    assert artifacts.artifact_open(run, "model/weights.bin").content_type == "application/octet-stream"
    assert list(artifacts.artifact_files(run)) == ["empty", "model/deep/MLmodel", "model/weights.bin", "notes.txt"]


def test_runs_are_kept_apart(memory_artifact_storage, editor, run, experiment):
    other = RunFactory(experiment=experiment)
    artifacts.artifact_write(user=editor, run=run, path="a.txt", stream=io.BytesIO(b"mine"))
    assert run_files(memory_artifact_storage, run) == {"a.txt": b"mine"}
    assert artifacts.artifact_list(other) == []
    with pytest.raises(NotFound):
        artifacts.artifact_open(other, "a.txt")


def test_overwrite_replaces_the_file_under_exactly_its_name(memory_artifact_storage, editor, run):
    artifacts.artifact_write(user=editor, run=run, path="dir/a.txt", stream=io.BytesIO(b"one"))
    artifacts.artifact_write(user=editor, run=run, path="dir/a.txt", stream=io.BytesIO(b"two!"))
    # Storage.save would have picked "a_<random>.txt" had the old file not been replaced.
    assert run_files(memory_artifact_storage, run) == {"dir/a.txt": b"two!"}
    assert artifacts.artifact_open(run, "dir/a.txt").file.read() == b"two!"
    assert artifacts.artifact_list(run, "dir") == [{"path": "dir/a.txt", "is_dir": False, "file_size": 4}]


def test_a_name_taken_by_a_concurrent_upload_is_a_conflict_and_leaves_no_copy(
    memory_artifact_storage, editor, run, monkeypatch
):
    real_save = memory_artifact_storage.save

    def racing_save(name, content, max_length=None):
        real_save(name, io.BytesIO(b"theirs"))  # another upload lands between our delete and our save
        return real_save(name, content, max_length=max_length)

    monkeypatch.setattr(memory_artifact_storage, "save", racing_save)
    with pytest.raises(Conflict, match="another upload"):
        artifacts.artifact_write(user=editor, run=run, path="a.txt", stream=io.BytesIO(b"mine"))
    assert run_files(memory_artifact_storage, run) == {"a.txt": b"theirs"}


def test_over_limit_upload_leaves_nothing_and_keeps_the_previous_version(
    settings, memory_artifact_storage, editor, run, artifact_root
):
    settings.ARTIFACT_MAX_UPLOAD_BYTES = 10
    artifacts.artifact_write(user=editor, run=run, path="kept.bin", stream=io.BytesIO(b"old"))
    with pytest.raises(PayloadTooLarge):
        artifacts.artifact_write(user=editor, run=run, path="big", stream=io.BytesIO(b"x" * 11))
    with pytest.raises(PayloadTooLarge):
        artifacts.artifact_write(user=editor, run=run, path="big", stream=io.BytesIO(b"x"), size_hint=11)
    with pytest.raises(PayloadTooLarge):
        artifacts.artifact_write(user=editor, run=run, path="kept.bin", stream=io.BytesIO(b"y" * 11))
    assert run_files(memory_artifact_storage, run) == {"kept.bin": b"old"}
    assert disk_files(artifact_root) == []


def test_a_broken_stream_leaves_the_previous_version(memory_artifact_storage, editor, run):
    class BrokenStream:
        calls = 0

        def read(self, size: int) -> bytes:
            BrokenStream.calls += 1
            if BrokenStream.calls > 1:
                raise OSError("client went away")
            return b"partial"

    artifacts.artifact_write(user=editor, run=run, path="x.bin", stream=io.BytesIO(b"complete"))
    with pytest.raises(OSError, match="went away"):
        artifacts.artifact_write(user=editor, run=run, path="x.bin", stream=BrokenStream())
    BrokenStream.calls = 0
    with pytest.raises(OSError, match="went away"):
        artifacts.artifact_write(user=editor, run=run, path="y.bin", stream=BrokenStream())
    assert run_files(memory_artifact_storage, run) == {"x.bin": b"complete"}


def test_path_conflicts(memory_artifact_storage, editor, run):
    artifacts.artifact_write(user=editor, run=run, path="dir/file", stream=io.BytesIO(b"x"))
    with pytest.raises(Conflict, match="is a directory"):
        artifacts.artifact_write(user=editor, run=run, path="dir", stream=io.BytesIO(b"y"))
    with pytest.raises(Conflict, match="parent"):
        artifacts.artifact_write(user=editor, run=run, path="dir/file/below", stream=io.BytesIO(b"y"))
    assert run_files(memory_artifact_storage, run) == {"dir/file": b"x"}


def test_open_missing_or_directory_is_404(memory_artifact_storage, editor, run):
    memory_artifact_storage.save(f"{run.experiment_id}/{run.run_uuid}/artifacts/d/f", io.BytesIO(b"x"))
    assert artifacts.artifact_open(run, "d/f").file.read() == b"x"  # put there through the storage only
    for path in ["nope", "d", "d/f/below"]:
        with pytest.raises(NotFound):
            artifacts.artifact_open(run, path)


def test_traversal_is_refused_and_stores_nothing(memory_artifact_storage, editor, run, artifact_root):
    for path in ["../../escape.txt", "/tmp/escape.txt", "a/../../escape.txt", "a\\..\\escape.txt"]:
        with pytest.raises(InvalidInput):
            artifacts.artifact_write(user=editor, run=run, path=path, stream=io.BytesIO(b"x"))
        with pytest.raises(InvalidInput):
            artifacts.artifact_list(run, path)
    artifacts.artifact_write(user=editor, run=run, path="inside.txt", stream=io.BytesIO(b"ok"))
    assert stored(memory_artifact_storage, "") == {f"{run.experiment_id}/{run.run_uuid}/artifacts/inside.txt": b"ok"}
    assert disk_files(artifact_root) == []


def test_recursive_delete_walks_the_folder(memory_artifact_storage, editor, team_admin, run):
    for path in ["d/f1", "d/e/f2", "d/e/g/f3", "keep.txt"]:
        artifacts.artifact_write(user=editor, run=run, path=path, stream=io.BytesIO(path.encode()))
    artifacts.artifact_delete(user=team_admin, run=run, path="d/e/g/f3")
    assert sorted(run_files(memory_artifact_storage, run)) == ["d/e/f2", "d/f1", "keep.txt"]
    artifacts.artifact_delete(user=team_admin, run=run, path="d")
    assert run_files(memory_artifact_storage, run) == {"keep.txt": b"keep.txt"}
    assert artifacts.artifact_list(run) == [{"path": "keep.txt", "is_dir": False, "file_size": 8}]
    with pytest.raises(NotFound):
        artifacts.artifact_delete(user=team_admin, run=run, path="d")
    assert list(AuditEvent.objects.values_list("details", flat=True).order_by("id")) == [
        {"path": "d/e/g/f3"},
        {"path": "d"},
    ]


def test_hard_deletes_remove_the_files_from_the_storage(
    memory_artifact_storage, editor, run, experiment, django_capture_on_commit_callbacks
):
    other = RunFactory(experiment=experiment)
    artifacts.artifact_write(user=editor, run=run, path="a/b.txt", stream=io.BytesIO(b"1"))
    artifacts.artifact_write(user=editor, run=other, path="c.txt", stream=io.BytesIO(b"2"))
    superuser = UserFactory(is_superuser=True)
    with django_capture_on_commit_callbacks(execute=True):
        services.run_hard_delete(user=superuser, run=run)
    assert stored(memory_artifact_storage, str(experiment.pk)) == {f"{other.run_uuid}/artifacts/c.txt": b"2"}
    with django_capture_on_commit_callbacks(execute=True):
        services.experiment_hard_delete(user=superuser, experiment=experiment)
    assert stored(memory_artifact_storage, "") == {}


# The native API on a generic storage -----------------------------------------------------------------


def test_api_upload_list_download_delete(memory_artifact_storage, client_for, editor, team_admin, run, artifact_root):
    client = client_for(editor)
    response = put(client, run, "plots/loss.json", b'{"a": 1}')
    assert response.status_code == 201
    assert response.json() == {"path": "plots/loss.json", "is_dir": False, "file_size": 8}
    assert put(client, run, "model.bin", b"\x00\x01" * 1000).status_code == 201
    assert put(client, run, "model.bin", b"\x02" * 10).status_code == 201  # overwrite
    assert run_files(memory_artifact_storage, run) == {"plots/loss.json": b'{"a": 1}', "model.bin": b"\x02" * 10}

    listing = client.get(url("run-artifacts", run_uuid=run.run_uuid)).json()
    assert listing["files"] == [
        {"path": "model.bin", "is_dir": False, "file_size": 10},
        {"path": "plots", "is_dir": True, "file_size": None},
    ]
    sub = client.get(url("run-artifacts", run_uuid=run.run_uuid), {"path": "plots"}).json()
    assert sub["files"] == [{"path": "plots/loss.json", "is_dir": False, "file_size": 8}]

    download = client.get(url("run-artifact", run_uuid=run.run_uuid, path="plots/loss.json"))
    assert download.status_code == 200 and download["Content-Type"] == "application/json"
    assert b"".join(download.streaming_content) == b'{"a": 1}'
    assert download["Content-Length"] == "8"
    assert_error(client.get(url("run-artifact", run_uuid=run.run_uuid, path="plots")), 404)

    assert client_for(team_admin).delete(url("run-artifact", run_uuid=run.run_uuid, path="plots")).status_code == 204
    assert run_files(memory_artifact_storage, run) == {"model.bin": b"\x02" * 10}
    assert disk_files(artifact_root) == []


def test_api_over_limit_and_traversal_store_nothing(
    settings, memory_artifact_storage, client_for, editor, run, artifact_root
):
    settings.ARTIFACT_MAX_UPLOAD_BYTES = 100
    client = client_for(editor)
    assert_error(put(client, run, "big.bin", b"x" * 101), 413, "payload_too_large")
    for path in ["../escape.txt", "a/../../escape.txt", "%2e%2e/escape.txt", "a%5cb", "%2fetc%2fpasswd"]:
        assert_error(put(client, run, path), 400)
    assert put(client, run, "small.bin", b"x" * 100).status_code == 201
    assert stored(memory_artifact_storage, "") == {
        f"{run.experiment_id}/{run.run_uuid}/artifacts/small.bin": b"x" * 100
    }
    assert disk_files(artifact_root) == []
