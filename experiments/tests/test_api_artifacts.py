"""Native API: artifacts (streamed upload, list, streamed download, delete, traversal attempts)."""

import pytest

from experiments.tests.api import assert_error, url


def put(client, run, path, data=b"content", **extra):
    return client.generic(
        "PUT",
        f"/api/v1/runs/{run.run_uuid}/artifacts/{path}",
        data,
        content_type="application/octet-stream",
        **extra,
    )


def stored_files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_upload_list_download_delete_round_trip(client_for, editor, team_admin, run, artifact_root):
    client = client_for(editor)
    response = put(client, run, "plots/loss.json", b'{"a": 1}')
    assert response.status_code == 201
    assert response.json() == {"path": "plots/loss.json", "is_dir": False, "file_size": 8}
    assert put(client, run, "model.bin", b"\x00\x01" * 1000).status_code == 201

    listing = client.get(url("run-artifacts", run_uuid=run.run_uuid)).json()
    assert listing["root_uri"] == run.artifact_uri
    assert listing["files"] == [
        {"path": "model.bin", "is_dir": False, "file_size": 2000},
        {"path": "plots", "is_dir": True, "file_size": None},
    ]
    sub = client.get(url("run-artifacts", run_uuid=run.run_uuid), {"path": "plots"}).json()
    assert sub["files"] == [{"path": "plots/loss.json", "is_dir": False, "file_size": 8}]

    download = client.get(url("run-artifact", run_uuid=run.run_uuid, path="plots/loss.json"))
    assert download.status_code == 200 and download["Content-Type"] == "application/json"
    assert b"".join(download.streaming_content) == b'{"a": 1}'
    assert download["Content-Length"] == "8" and download["Content-Security-Policy"] == "sandbox"

    assert client_for(team_admin).delete(url("run-artifact", run_uuid=run.run_uuid, path="plots")).status_code == 204
    assert stored_files(artifact_root) == [f"{run.experiment_id}/{run.run_uuid}/artifacts/model.bin"]


@pytest.mark.parametrize(
    "path",
    ["../escape.txt", "a/../../escape.txt", "%2e%2e/escape.txt", "a%5cb", "a%00b", "a//b", "%2fetc%2fpasswd"],
)
def test_traversal_attempts_are_400_and_write_nothing(client_for, editor, run, artifact_root, path):
    response = put(client_for(editor), run, path)
    assert_error(response, 400)
    assert stored_files(artifact_root.parent) == []


def test_over_the_size_limit_is_413_and_leaves_nothing(settings, client_for, editor, run, artifact_root):
    settings.ARTIFACT_MAX_UPLOAD_BYTES = 100
    response = put(client_for(editor), run, "big.bin", b"x" * 101)
    assert_error(response, 413, "payload_too_large")
    assert stored_files(artifact_root) == []


def test_download_missing_or_directory_is_404(client_for, editor, run):
    client = client_for(editor)
    put(client, run, "d/f.txt")
    for path in ["nope.txt", "d"]:
        assert_error(client.get(url("run-artifact", run_uuid=run.run_uuid, path=path)), 404)


def test_list_with_bad_path_is_400(client_for, viewer, run):
    assert_error(client_for(viewer).get(url("run-artifacts", run_uuid=run.run_uuid), {"path": "../x"}), 400)


def test_viewer_cannot_upload_editor_cannot_delete(client_for, viewer, editor, run, artifact_root):
    assert_error(put(client_for(viewer), run, "x.txt"), 403)
    assert stored_files(artifact_root) == []
    put(client_for(editor), run, "x.txt")
    assert_error(client_for(editor).delete(url("run-artifact", run_uuid=run.run_uuid, path="x.txt")), 403)
    assert len(stored_files(artifact_root)) == 1


def test_foreign_run_is_404(client_for, editor, other_run, artifact_root):
    assert_error(put(client_for(editor), other_run, "x.txt"), 404)
    assert_error(client_for(editor).get(url("run-artifacts", run_uuid=other_run.run_uuid)), 404)
    assert stored_files(artifact_root) == []


def test_bad_content_length_is_400(client_for, editor, run, artifact_root):
    response = put(client_for(editor), run, "x.txt", CONTENT_LENGTH="lots")
    assert_error(response, 400)
    assert stored_files(artifact_root) == []


def test_upload_to_a_deleted_run_is_400(client_for, editor, run):
    run.lifecycle_stage = "deleted"
    run.save()
    assert_error(put(client_for(editor), run, "x.txt"), 400)
