"""Artifact storage: safe paths, chunked atomic writes, size limit, listing, opening, deleting."""

import io

import pytest

from accounts.models import AuditEvent
from experiments import artifacts
from experiments.artifacts import safe_artifact_path
from experiments.models import LifecycleStage, Run
from mlplatform.errors import Conflict, Forbidden, InvalidInput, NotFound, PayloadTooLarge


def files_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.parametrize(
    ("path", "clean"),
    [
        ("model.pkl", "model.pkl"),
        ("a/b/c.txt", "a/b/c.txt"),
        ("./a/./b", "a/b"),
        ("dir/", "dir"),
        ("a b/ü.txt", "a b/ü.txt"),
    ],
)
def test_safe_paths_are_normalised(path, clean):
    assert safe_artifact_path(path) == clean


@pytest.mark.parametrize(
    "path", ["", "../x", "a/../../x", "a/..", "/etc/passwd", "a\\b", "..\\x", "a\x00b", "a//b", ".", 5, "x" * 1001]
)
def test_unsafe_paths_are_400(path):
    with pytest.raises(InvalidInput):
        safe_artifact_path(path)


def test_root_is_allowed_only_for_listing():
    assert safe_artifact_path("", allow_root=True) == ""


def test_write_list_open_round_trip(editor, run, artifact_root):
    artifacts.artifact_write(user=editor, run=run, path="model/weights.bin", stream=io.BytesIO(b"\x00" * 3000))
    artifacts.artifact_write(user=editor, run=run, path="notes.txt", stream=io.BytesIO(b"hello"))
    assert artifacts.artifact_list(run) == [
        {"path": "model", "is_dir": True, "file_size": None},
        {"path": "notes.txt", "is_dir": False, "file_size": 5},
    ]
    assert artifacts.artifact_list(run, "model") == [{"path": "model/weights.bin", "is_dir": False, "file_size": 3000}]
    assert artifacts.artifact_list(run, "missing") == []
    opened = artifacts.artifact_open(run, "notes.txt")
    with opened.file:
        assert opened.file.read() == b"hello"
    assert (opened.size, opened.content_type, opened.name) == (5, "text/plain", "notes.txt")
    assert artifacts.artifact_open(run, "model/weights.bin").content_type == "application/octet-stream"
    assert files_under(artifact_root) == [
        f"{run.experiment_id}/{run.run_uuid}/artifacts/model/weights.bin",
        f"{run.experiment_id}/{run.run_uuid}/artifacts/notes.txt",
    ]


def test_overwrite_replaces_the_file(editor, run):
    artifacts.artifact_write(user=editor, run=run, path="a.txt", stream=io.BytesIO(b"one"))
    artifacts.artifact_write(user=editor, run=run, path="a.txt", stream=io.BytesIO(b"two!"))
    assert artifacts.artifact_open(run, "a.txt").file.read() == b"two!"


def test_empty_upload_makes_an_empty_file(editor, run):
    entry = artifacts.artifact_write(user=editor, run=run, path="empty", stream=None)
    assert entry == {"path": "empty", "is_dir": False, "file_size": 0}


def test_size_limit_from_hint_and_from_stream_leaves_nothing(settings, editor, run, artifact_root):
    settings.ARTIFACT_MAX_UPLOAD_BYTES = 10
    with pytest.raises(PayloadTooLarge):
        artifacts.artifact_write(user=editor, run=run, path="big", stream=io.BytesIO(b"x"), size_hint=11)
    with pytest.raises(PayloadTooLarge):
        artifacts.artifact_write(user=editor, run=run, path="big", stream=io.BytesIO(b"x" * 11))
    assert files_under(artifact_root) == []


def test_chunked_copy_reads_in_bounded_chunks(editor, run):
    class CountingStream(io.BytesIO):
        largest = 0

        def read(self, size=-1):
            CountingStream.largest = max(CountingStream.largest, size)
            return super().read(size)

    artifacts.artifact_write(user=editor, run=run, path="big.bin", stream=CountingStream(b"y" * (3 * 1024 * 1024)))
    assert CountingStream.largest == artifacts.CHUNK_SIZE
    assert artifacts.artifact_list(run)[0]["file_size"] == 3 * 1024 * 1024


def test_failed_stream_leaves_no_partial_file(editor, run, artifact_root):
    class BrokenStream:
        def __init__(self):
            self.calls = 0

        def read(self, size):
            self.calls += 1
            if self.calls > 1:
                raise OSError("client went away")
            return b"partial"

    with pytest.raises(OSError):
        artifacts.artifact_write(user=editor, run=run, path="x.bin", stream=BrokenStream())
    assert files_under(artifact_root) == []


def test_traversal_never_writes_outside(editor, run, artifact_root):
    for path in ["../../escape.txt", "/tmp/escape.txt", "a\\..\\..\\escape.txt"]:
        with pytest.raises(InvalidInput):
            artifacts.artifact_write(user=editor, run=run, path=path, stream=io.BytesIO(b"x"))
    assert files_under(artifact_root.parent) == []


def test_symlink_out_of_the_run_folder_is_refused(editor, run, tmp_path):
    folder = artifacts.run_artifact_dir(run)
    folder.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (folder / "link").symlink_to(outside)
    with pytest.raises(InvalidInput):
        artifacts.artifact_write(user=editor, run=run, path="link/x.txt", stream=io.BytesIO(b"x"))
    assert list(outside.iterdir()) == []


def test_path_conflicts(editor, run):
    artifacts.artifact_write(user=editor, run=run, path="dir/file", stream=io.BytesIO(b"x"))
    with pytest.raises(Conflict):
        artifacts.artifact_write(user=editor, run=run, path="dir", stream=io.BytesIO(b"x"))
    with pytest.raises(Conflict):
        artifacts.artifact_write(user=editor, run=run, path="dir/file/below", stream=io.BytesIO(b"x"))


def test_open_missing_or_directory_is_404(editor, run):
    artifacts.artifact_write(user=editor, run=run, path="d/f", stream=io.BytesIO(b"x"))
    for path in ["nope", "d"]:
        with pytest.raises(NotFound):
            artifacts.artifact_open(run, path)


def test_permissions_and_run_state(viewer, editor, team_admin, run):
    with pytest.raises(Forbidden):
        artifacts.artifact_write(user=viewer, run=run, path="a", stream=io.BytesIO(b"x"))
    artifacts.artifact_write(user=editor, run=run, path="a", stream=io.BytesIO(b"x"))
    with pytest.raises(Forbidden):
        artifacts.artifact_delete(user=editor, run=run, path="a")
    run.lifecycle_stage = LifecycleStage.DELETED
    with pytest.raises(InvalidInput, match="deleted"):
        artifacts.artifact_write(user=editor, run=run, path="b", stream=io.BytesIO(b"x"))
    run.lifecycle_stage = LifecycleStage.ACTIVE
    Run.objects.filter(pk=run.pk).update(locked=True)
    run.refresh_from_db()
    with pytest.raises(InvalidInput, match="locked"):
        artifacts.artifact_write(user=editor, run=run, path="b", stream=io.BytesIO(b"x"))


def test_delete_file_and_folder_is_audited(editor, team_admin, run):
    artifacts.artifact_write(user=editor, run=run, path="d/f1", stream=io.BytesIO(b"x"))
    artifacts.artifact_write(user=editor, run=run, path="g", stream=io.BytesIO(b"x"))
    artifacts.artifact_delete(user=team_admin, run=run, path="g")
    artifacts.artifact_delete(user=team_admin, run=run, path="d")
    assert artifacts.artifact_list(run) == []
    with pytest.raises(NotFound):
        artifacts.artifact_delete(user=team_admin, run=run, path="g")
    assert list(AuditEvent.objects.values_list("details", flat=True).order_by("id")) == [{"path": "g"}, {"path": "d"}]


def test_listing_hides_in_progress_uploads(editor, run):
    folder = artifacts.run_artifact_dir(run)
    folder.mkdir(parents=True)
    (folder / ".upload-abc").write_bytes(b"partial")
    assert artifacts.artifact_list(run) == []
    with pytest.raises(NotFound):
        artifacts.artifact_open(run, ".upload-abc")
