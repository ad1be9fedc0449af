"""A full or read-only artifact store: a clear 507/503 envelope, and no partial file left visible.

Injected with real filesystems: a 64 KiB tmpfs (uploads hit ENOSPC part-way) and a read-only tmpfs (EROFS),
mounted as ARTIFACT_ROOT. Mounting needs root; elsewhere the tests skip and say so.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from experiments.artifacts import TEMP_PREFIX

pytestmark = pytest.mark.django_db


def mount_tmpfs(target: Path, options: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs to simulate a full/read-only disk needs root")
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode()[:200]}")


@pytest.fixture
def small_store(tmp_path, settings):
    """ARTIFACT_ROOT on a 64 KiB filesystem."""
    store = tmp_path / "full"
    mount_tmpfs(store, "size=64k")
    settings.ARTIFACT_ROOT = store
    yield store
    subprocess.run(["umount", "-l", str(store)], check=False)


@pytest.fixture
def readonly_store(tmp_path, settings):
    """ARTIFACT_ROOT on a read-only filesystem."""
    store = tmp_path / "readonly"
    mount_tmpfs(store, "size=64k,ro")
    settings.ARTIFACT_ROOT = store
    yield store
    subprocess.run(["umount", "-l", str(store)], check=False)


def upload(client, workspace, path: str, size: int):
    url = f"/api/v1/runs/{workspace.run.run_uuid}/artifacts/{path}"
    return client.generic("PUT", url, os.urandom(size), headers=workspace.headers())


def visible_files(store: Path) -> list[Path]:
    return [path for path in store.rglob("*") if path.is_file()]


def test_disk_full_is_a_507_and_leaves_no_partial_file(client, workspace, small_store) -> None:
    assert upload(client, workspace, "small.bin", 1000).status_code == 201
    response = upload(client, workspace, "big.bin", 512 * 1024)
    assert response.status_code == 507, response.content[:300]
    assert response.json()["error"]["code"] == "insufficient_storage"
    names = [path.name for path in visible_files(small_store)]
    assert names == ["small.bin"], names
    assert not any(name.startswith(TEMP_PREFIX) for name in names)
    listing = client.get(f"/api/v1/runs/{workspace.run.run_uuid}/artifacts/", headers=workspace.headers())
    assert [entry["path"] for entry in listing.json()["files"]] == ["small.bin"]


def test_read_only_store_is_a_503(client, workspace, readonly_store) -> None:
    response = upload(client, workspace, "model.bin", 1000)
    assert response.status_code == 503, response.content[:300]
    assert response.json()["error"]["code"] == "unavailable"
    assert visible_files(readonly_store) == []


def test_mlflow_upload_to_a_full_store_answers_in_mlflow_shape(client, workspace, small_store) -> None:
    run = workspace.run
    url = f"/api/2.0/mlflow-artifacts/artifacts/{run.experiment_id}/{run.run_uuid}/artifacts/big.bin"
    response = client.generic("PUT", url, os.urandom(512 * 1024), headers=workspace.headers())
    assert response.status_code == 507, response.content[:300]
    assert response.json()["error_code"] == "RESOURCE_EXHAUSTED"
    assert set(response.json()) == {"error_code", "message"}
    assert visible_files(small_store) == []


def test_mlflow_upload_to_a_read_only_store_is_temporarily_unavailable(client, workspace, readonly_store) -> None:
    run = workspace.run
    url = f"/api/2.0/mlflow-artifacts/artifacts/{run.experiment_id}/{run.run_uuid}/artifacts/model.bin"
    response = client.generic("PUT", url, b"weights", headers=workspace.headers())
    assert response.status_code == 503, response.content[:300]
    assert response.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    assert visible_files(readonly_store) == []
