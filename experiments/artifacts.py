"""Run artifacts on the filesystem under ``settings.ARTIFACT_ROOT``.

Layout: ``<ARTIFACT_ROOT>/<experiment id>/<run id>/artifacts/<path>``, which is exactly what the
run's ``artifact_uri`` (``mlflow-artifacts:/<experiment id>/<run id>/artifacts``) names, so the
MLflow façade's proxied-artifact routes map onto the same files.

Uploads are copied in chunks into a temporary file next to the target and renamed into place, so
a reader never sees a partial file and a too-large upload leaves nothing behind. Every path is
checked by ``safe_artifact_path`` and the final location is re-checked to be inside the run's folder.
A full store is a 507 (``InsufficientStorage``), a read-only or inaccessible one a 503 (``Unavailable``).
"""

from __future__ import annotations

import errno
import logging
import mimetypes
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings

from accounts import audit
from accounts.permissions import Action, authorize
from experiments.models import LifecycleStage, Run
from mlplatform.errors import Conflict, InsufficientStorage, InvalidInput, NotFound, PayloadTooLarge, Unavailable

logger = logging.getLogger("experiments.artifacts")

CHUNK_SIZE = 1024 * 1024
MAX_PATH_LENGTH = 1000
TEMP_PREFIX = ".upload-"
STORE_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
STORE_UNAVAILABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


@dataclass(frozen=True)
class ArtifactFile:
    """An open artifact ready to stream: the file, its size and content type."""

    file: IO[bytes]
    size: int
    content_type: str
    name: str


def safe_artifact_path(path: Any, *, allow_root: bool = False) -> str:
    """Normalise a relative artifact path; ``..``, absolute paths, backslashes, NUL and empty segments are a 400."""
    if not isinstance(path, str):
        raise InvalidInput("Artifact path must be a string.", details={"path": ["Must be a string."]})
    if "\x00" in path:
        raise InvalidInput("Artifact path must not contain NUL characters.", details={"path": ["NUL character."]})
    if "\\" in path:
        raise InvalidInput("Artifact path must use '/' and contain no backslashes.", details={"path": ["Backslash."]})
    if path.startswith("/"):
        raise InvalidInput("Artifact path must be relative, not absolute.", details={"path": ["Absolute path."]})
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidInput(
            f"Artifact path is over the limit of {MAX_PATH_LENGTH} characters.", details={"path": ["Too long."]}
        )
    trimmed = path[:-1] if path.endswith("/") else path
    segments = [segment for segment in trimmed.split("/") if segment != "."] if trimmed else []
    if any(segment == "" for segment in segments):
        raise InvalidInput("Artifact path must not contain empty segments ('//').", details={"path": ["Empty."]})
    if any(segment == ".." for segment in segments):
        raise InvalidInput("Artifact path must not contain '..'.", details={"path": ["Parent reference."]})
    if not segments and not allow_root:
        raise InvalidInput("Artifact path must not be empty.", details={"path": ["Empty path."]})
    return "/".join(segments)


def run_artifact_dir(run: Run) -> Path:
    """The folder holding a run's artifacts."""
    return Path(settings.ARTIFACT_ROOT) / str(run.experiment_id) / run.run_uuid / "artifacts"


def _resolve(run: Run, path: str) -> Path:
    """The absolute location of a clean path, refusing anything that resolves outside the run's folder."""
    root = run_artifact_dir(run).resolve()
    target = (root / path).resolve() if path else root
    if target != root and root not in target.parents:
        raise InvalidInput("Artifact path points outside the run's artifact folder.", details={"path": ["Outside."]})
    return target


@contextmanager
def _storage_errors() -> Iterator[None]:
    """Turn the store's "disk full" and "read-only / no access" errors into clear 507 / 503 errors."""
    try:
        yield
    except OSError as exc:
        if exc.errno in STORE_FULL:
            logger.error("artifact store full: %s", exc)
            raise InsufficientStorage("The artifact store is full; free space or raise the quota, then retry.") from exc
        if exc.errno in STORE_UNAVAILABLE:
            logger.error("artifact store not writable: %s", exc)
            raise Unavailable("The artifact store is not writable right now; retry later.") from exc
        raise


def _require_writable(run: Run) -> None:
    if run.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidInput(f"Run {run.run_uuid} is deleted; restore it before writing to it.")
    if run.locked:
        raise InvalidInput(f"Run {run.run_uuid} is finished and locked; it accepts no more data.")


def artifact_write(*, user: Any, run: Run, path: str, stream: IO[bytes] | None, size_hint: int | None = None) -> dict:
    """Store an upload at ``path``; over ``ARTIFACT_MAX_UPLOAD_BYTES`` is a 413 and leaves nothing behind."""
    authorize(user, Action.WRITE, run, label="Run")
    _require_writable(run)
    clean = safe_artifact_path(path)
    limit = settings.ARTIFACT_MAX_UPLOAD_BYTES
    if size_hint is not None and size_hint > limit:
        raise PayloadTooLarge(f"The artifact is {size_hint} bytes, over the limit of {limit} bytes.")
    target = _resolve(run, clean)
    if target.is_dir():
        raise Conflict(f"{clean!r} is a directory.")
    with _storage_errors():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise Conflict(f"A parent of {clean!r} is a file, not a directory.") from exc
        handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=TEMP_PREFIX, delete=False)  # noqa: SIM115
        written = 0
        try:
            with handle:
                while stream is not None:
                    chunk = stream.read(CHUNK_SIZE)
                    if not chunk:
                        break
                    written += len(chunk)
                    if written > limit:
                        raise PayloadTooLarge(f"The artifact is over the limit of {limit} bytes.")
                    handle.write(chunk)
            os.replace(handle.name, target)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise
    return {"path": clean, "is_dir": False, "file_size": written}


def artifact_open(run: Run, path: str) -> ArtifactFile:
    """Open an artifact file for streaming; directories and missing files are a 404."""
    clean = safe_artifact_path(path)
    target = _resolve(run, clean)
    if not target.is_file() or target.name.startswith(TEMP_PREFIX):
        raise NotFound(f"Artifact {clean!r} not found.")
    content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    with _storage_errors():
        file = target.open("rb")
    return ArtifactFile(file=file, size=os.fstat(file.fileno()).st_size, content_type=content_type, name=target.name)


def artifact_list(run: Run, path: str = "") -> list[dict[str, Any]]:
    """The files and folders directly inside ``path`` (the run's root by default), sorted by path."""
    clean = safe_artifact_path(path, allow_root=True)
    target = _resolve(run, clean)
    if not target.is_dir():
        return []
    entries = []
    for child in sorted(target.iterdir(), key=lambda p: p.name):
        if child.name.startswith(TEMP_PREFIX):
            continue
        is_dir = child.is_dir()
        entries.append(
            {
                "path": f"{clean}/{child.name}" if clean else child.name,
                "is_dir": is_dir,
                "file_size": None if is_dir else child.stat().st_size,
            }
        )
    return entries


def artifact_delete(*, user: Any, run: Run, path: str, request: Any = None) -> None:
    """Delete an artifact file or folder (admins)."""
    authorize(user, Action.DELETE, run, label="Run")
    _require_writable(run)
    clean = safe_artifact_path(path)
    target = _resolve(run, clean)
    with _storage_errors():
        if target.is_dir():
            shutil.rmtree(target)
        elif target.is_file():
            target.unlink()
        else:
            raise NotFound(f"Artifact {clean!r} not found.")
    audit.record_event(action="artifact.delete", actor=user, request=request, target=run, details={"path": clean})
