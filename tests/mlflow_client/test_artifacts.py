"""Artifacts through MLflow's proxied artifact API, driven by the unchanged client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.mlflow_client.conftest import ClientUser, MlflowServer

pytestmark = pytest.mark.django_db(transaction=True)


def test_log_and_download_artifacts(mlflow_env: ClientUser, mlflow_server: MlflowServer, tmp_path: Path) -> None:
    import mlflow
    from mlflow import MlflowClient

    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("alpha")
    (source / "sub" / "b.bin").write_bytes(b"\x00\x01\x02")
    single = tmp_path / "notes.md"
    single.write_text("# notes")

    mlflow.set_experiment("artifacts")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(single))
        mlflow.log_artifacts(str(source), artifact_path="data")
        mlflow.log_dict({"k": [1, 2]}, "config/params.json")
        mlflow.log_text("hello", "texts/hello.txt")

    run_id = run.info.run_id
    stored = mlflow_server.artifact_root / run.info.experiment_id / run_id / "artifacts"
    assert (stored / "notes.md").read_text() == "# notes"
    assert (stored / "data" / "sub" / "b.bin").read_bytes() == b"\x00\x01\x02"
    assert json.loads((stored / "config" / "params.json").read_text()) == {"k": [1, 2]}

    client = MlflowClient()
    top = {(f.path, f.is_dir) for f in client.list_artifacts(run_id)}
    assert top == {("notes.md", False), ("data", True), ("config", True), ("texts", True)}
    nested = client.list_artifacts(run_id, "data/sub")
    assert [(f.path, f.file_size) for f in nested] == [("data/sub/b.bin", 3)]

    local = Path(client.download_artifacts(run_id, "data", str(tmp_path / "down")))
    assert (local / "a.txt").read_text() == "alpha"
    assert (local / "sub" / "b.bin").read_bytes() == b"\x00\x01\x02"
    assert mlflow.artifacts.load_text(f"runs:/{run_id}/texts/hello.txt") == "hello"
    assert mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/config/params.json") == {"k": [1, 2]}


def test_missing_artifact_download_raises(mlflow_env: ClientUser, tmp_path: Path) -> None:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    mlflow.set_experiment("artifacts-2")
    with mlflow.start_run() as run:
        mlflow.log_text("x", "only.txt")

    with pytest.raises(MlflowException, match="Failed to download artifacts"):
        MlflowClient().download_artifacts(run.info.run_id, "missing.txt", str(tmp_path))


def test_traversal_through_the_real_server_is_refused(mlflow_env: ClientUser, mlflow_server: MlflowServer) -> None:
    import mlflow
    import requests

    with mlflow.start_run() as run:
        pass
    base = (
        f"{mlflow_server.url}/api/2.0/mlflow-artifacts/artifacts/{run.info.experiment_id}/{run.info.run_id}/artifacts"
    )
    headers = {"Authorization": f"Bearer {mlflow_env.token}"}
    response = requests.put(f"{base}/%2e%2e/%2e%2e/escape.txt", data=b"x", headers=headers, timeout=10)
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert not list(mlflow_server.artifact_root.rglob("escape.txt"))


def test_large_file_with_client_multipart_enabled_falls_back_to_one_upload(
    mlflow_env: ClientUser, mlflow_server: MlflowServer, tmp_path: Path, monkeypatch
) -> None:
    """With MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD the client asks mpu/create first; "not supported" makes it PUT."""
    import mlflow
    from mlflow.exceptions import _UnsupportedMultipartUploadException

    from experiments.mlflow.artifact_views import MULTIPART_UNSUPPORTED

    assert MULTIPART_UNSUPPORTED.startswith(_UnsupportedMultipartUploadException.MESSAGE)
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", "1024")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", "65536")
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 1024)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(big))
    stored = mlflow_server.artifact_root / run.info.experiment_id / run.info.run_id / "artifacts" / "big.bin"
    assert stored.read_bytes() == big.read_bytes()
