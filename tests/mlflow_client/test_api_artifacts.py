"""The proxied artifact API and ``/mlflow/artifacts/list`` through the Django test client."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments import services
from tests.mlflow_client.helpers import call, error_of

pytestmark = pytest.mark.django_db

ROOT = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.fixture
def run(editor, team):
    """A running run in a new experiment of ``team``."""
    experiment = services.experiment_create(user=editor, team=team, name="exp")
    return services.run_create(user=editor, experiment=experiment)


def _path(run, rest: str = "") -> str:
    return f"{run.experiment_id}/{run.run_uuid}/artifacts{'/' + rest if rest else ''}"


def _put(client, run, rest: str, data: bytes = b"data"):
    return client.put(f"{ROOT}/{_path(run, rest)}", data=data, content_type="application/octet-stream")


def test_upload_download_list_and_delete(client_for, editor, team_admin, run, artifact_root: Path) -> None:
    client = client_for(editor)
    assert _put(client, run, "dir/file.txt", b"hello").json() == {}
    assert (artifact_root / _path(run, "dir/file.txt")).read_bytes() == b"hello"

    download = client.get(f"{ROOT}/{_path(run, 'dir/file.txt')}")
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"hello"
    assert download["Content-Security-Policy"] == "sandbox"

    top = client.get(ROOT, {"path": _path(run)}).json()["files"]
    assert top == [{"path": "dir", "is_dir": True}]
    inner = client.get(ROOT, {"path": _path(run, "dir")}).json()["files"]
    assert inner == [{"path": "file.txt", "is_dir": False, "file_size": 5}]

    assert client_for(team_admin).delete(f"{ROOT}/{_path(run, 'dir/file.txt')}").status_code == 200
    assert not (artifact_root / _path(run, "dir/file.txt")).exists()


def test_tracking_list_endpoint_uses_run_relative_paths(client_for, editor, run) -> None:
    client = client_for(editor)
    _put(client, run, "a/b.txt")
    body = call(client, "GET", "artifacts/list", {"run_id": run.run_uuid, "path": "a"}).json()
    assert body == {"root_uri": run.artifact_uri, "files": [{"path": "a/b.txt", "is_dir": False, "file_size": 4}]}


@pytest.mark.parametrize("rest", ["../escape.txt", "a/../../escape.txt", "a//b.txt", "a\\b.txt"])
def test_unsafe_paths_are_refused_and_nothing_is_written(client_for, editor, run, artifact_root: Path, rest) -> None:
    response = _put(client_for(editor), run, rest)
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    assert not list(artifact_root.rglob("*.txt"))


def test_encoded_traversal_is_refused(client_for, editor, run, artifact_root: Path) -> None:
    response = client_for(editor).put(f"{ROOT}/{_path(run)}/%2e%2e/%2e%2e/x.txt", data=b"x", content_type="text/plain")
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    assert not list(artifact_root.rglob("x.txt"))


def test_path_with_the_wrong_experiment_is_not_found(client_for, editor, run, artifact_root: Path) -> None:
    response = client_for(editor).put(
        f"{ROOT}/999/{run.run_uuid}/artifacts/x.txt", data=b"x", content_type="text/plain"
    )
    assert error_of(response) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert not list(artifact_root.rglob("x.txt"))


def test_path_outside_any_run_is_refused(client_for, editor, run) -> None:
    response = client_for(editor).put(f"{ROOT}/{run.experiment_id}/x.txt", data=b"x", content_type="text/plain")
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")


def test_listing_an_experiment_root_is_empty(client_for, editor, run) -> None:
    assert client_for(editor).get(ROOT, {"path": str(run.experiment_id)}).json() == {"files": []}


def test_viewer_cannot_upload(client_for, viewer, run, artifact_root: Path) -> None:
    response = _put(client_for(viewer), run, "x.txt")
    assert error_of(response) == (403, "PERMISSION_DENIED")
    assert not list(artifact_root.rglob("x.txt"))


def test_outsider_cannot_download(client_for, editor, outsider, run) -> None:
    _put(client_for(editor), run, "x.txt")
    response = client_for(outsider).get(f"{ROOT}/{_path(run, 'x.txt')}")
    assert error_of(response) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_over_the_size_limit_is_413_and_leaves_nothing(client_for, editor, run, settings, artifact_root: Path) -> None:
    settings.ARTIFACT_MAX_UPLOAD_BYTES = 3
    response = _put(client_for(editor), run, "big.bin", b"0123456789")
    assert error_of(response) == (413, "INVALID_PARAMETER_VALUE")
    assert not list(artifact_root.rglob("big.bin"))


def test_missing_file_is_not_found(client_for, editor, run) -> None:
    response = client_for(editor).get(f"{ROOT}/{_path(run, 'nope.txt')}")
    assert error_of(response) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_multipart_upload_is_answered_not_supported(client_for, editor, run) -> None:
    response = call(client_for(editor), "POST", f"/api/2.0/mlflow-artifacts/mpu/create/{_path(run)}", {"path": "x"})
    assert error_of(response) == (501, "NOT_IMPLEMENTED")
    assert response.json()["message"].startswith("Multipart upload is not supported")


def test_presigned_download_is_answered_not_supported(client_for, editor, run) -> None:
    response = client_for(editor).get(f"/api/2.0/mlflow-artifacts/presigned/{_path(run, 'x')}")
    assert error_of(response) == (501, "NOT_IMPLEMENTED")


@pytest.mark.parametrize("root", ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"])
@pytest.mark.parametrize("kind", ["upload", "download"])
def test_run_presigned_urls_are_answered_not_supported(client_for, editor, run, root, kind) -> None:
    """As the README says: 501 NOT_IMPLEMENTED, not ENDPOINT_NOT_FOUND (server-info says they are off)."""
    body = {"run_id": run.run_uuid, "path": "x.txt"}
    response = call(client_for(editor), "POST", f"{root}/artifacts/presigned-{kind}-url", body)
    assert error_of(response) == (501, "NOT_IMPLEMENTED")


def test_presigned_urls_need_login(client) -> None:
    response = call(client, "POST", "/api/2.0/mlflow/artifacts/presigned-upload-url", {})
    assert error_of(response) == (401, "UNAUTHENTICATED")


def test_bad_content_length_is_refused(client_for, editor, run) -> None:
    response = client_for(editor).put(
        f"{ROOT}/{_path(run, 'x.txt')}", data=b"x", content_type="text/plain", CONTENT_LENGTH="abc"
    )
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
