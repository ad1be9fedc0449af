"""Run artifacts in Django's ``STORAGES["artifacts"]`` storage (by default the filesystem under ``ARTIFACT_ROOT``).

Names inside the storage are ``<experiment id>/<run id>/artifacts/<path>``, which is exactly what the
run's ``artifact_uri`` (``mlflow-artifacts:/<experiment id>/<run id>/artifacts``) names, so the MLflow
façade's proxied-artifact routes map onto the same files. Every path is checked by ``safe_artifact_path``.

On a ``FileSystemStorage`` (the default, ``experiments.storage.ArtifactFileSystemStorage``) uploads are
copied in chunks into a temporary file next to the target and renamed into place, so a reader never sees a
partial file and a too-large upload leaves nothing behind; the final location (``storage.path()``) is
re-checked to be inside the run's folder, so a symlink cannot lead out of it. A full disk is a 507
(``InsufficientStorage``), a read-only or inaccessible one a 503 (``Unavailable``).

Any other backend (S3-compatible storage through django-storages, ``InMemoryStorage`` in tests) is used
through the generic ``Storage`` API only: ``save``/``open``/``size``/``exists``/``listdir``/``delete``. An
upload is first counted into a local spooled temporary file, so an over-limit or broken upload never
reaches the storage (and an overwritten file keeps its old content); only then is the old file deleted and
the new one saved under exactly the requested name. Folders are what ``listdir`` reports; deleting one
walks it.
"""

from __future__ import annotations

import errno
import io
import logging
import mimetypes
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages

from accounts import audit
from accounts.permissions import Action, authorize
from experiments.models import LifecycleStage, Run
from mlplatform.errors import Conflict, InsufficientStorage, InvalidInput, NotFound, PayloadTooLarge, Unavailable

logger = logging.getLogger("experiments.artifacts")

STORAGE_ALIAS = "artifacts"
CHUNK_SIZE = 1024 * 1024
# Generic backends: an upload is spooled in memory up to this size, then in a local temporary file.
SPOOL_MEMORY_BYTES = 8 * CHUNK_SIZE
MAX_PATH_LENGTH = 1000
TEMP_PREFIX = ".upload-"
STORE_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
STORE_UNAVAILABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
# What the generic API raises for "no such file or folder" / "a file where a folder was expected" (the
# in-memory storage turns ENOTDIR into FileExistsError).
MISSING = (FileNotFoundError, NotADirectoryError, FileExistsError)


class Kind(Enum):
    """What a name is in a generic storage."""

    FILE = "file"
    DIR = "dir"


@dataclass(frozen=True)
class ArtifactFile:
    """An open artifact ready to stream: the file, its size and content type."""

    file: IO[bytes]
    size: int
    content_type: str
    name: str


def artifact_storage() -> Storage:
    """The storage holding every artifact: ``STORAGES["artifacts"]``."""
    return storages[STORAGE_ALIAS]


def _on_disk(storage: Storage) -> bool:
    """True for a local filesystem store, which gets atomic renames and the symlink re-check."""
    return isinstance(storage, FileSystemStorage)


def artifact_store_description() -> str:
    """Where artifacts go, for operators' messages: the folder on disk, or the backend's class."""
    storage = artifact_storage()
    if _on_disk(storage):
        return str(storage.location)
    return f"{type(storage).__module__}.{type(storage).__qualname__}"


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


def run_artifact_name(run: Run) -> str:
    """The storage name of a run's (or logged model's) artifact folder: ``<experiment id>/<run id>/artifacts``."""
    return f"{run.experiment_id}/{run.run_uuid}/artifacts"


def _name(run: Run, clean: str) -> str:
    """The storage name of a clean path inside a run's artifacts."""
    folder = run_artifact_name(run)
    return f"{folder}/{clean}" if clean else folder


def run_artifact_dir(run: Run) -> Path:
    """The folder holding a run's artifacts on a filesystem store (``NotImplementedError`` on remote ones)."""
    return Path(artifact_storage().path(run_artifact_name(run)))


def _resolve(run: Run, path: str) -> Path:
    """On disk: the absolute location of a clean path, refusing anything that resolves outside the run's folder."""
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


def _content_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


# Generic storage helpers ------------------------------------------------------------------------


def _listdir(storage: Storage, name: str) -> tuple[list[str], list[str]]:
    """``storage.listdir`` with "missing" or "is a file" as an empty folder."""
    try:
        directories, files = storage.listdir(name)
    except MISSING:
        return [], []
    return list(directories), list(files)


def _exists(storage: Storage, name: str) -> bool:
    """``storage.exists`` with a name below a file as missing."""
    try:
        return bool(storage.exists(name))
    except MISSING:
        return False


def _kind(storage: Storage, name: str) -> Kind | None:
    """Whether ``name`` is a file, a folder (with entries, or an empty one the backend keeps) or nothing."""
    directories, files = _listdir(storage, name)
    if directories or files:
        return Kind.DIR
    if not _exists(storage, name):
        return None
    try:
        storage.size(name)
    except IsADirectoryError:
        return Kind.DIR
    return Kind.FILE


def _delete_tree(storage: Storage, name: str) -> None:
    """Delete a folder and everything below it by walking ``listdir`` (object stores have no real folders)."""
    directories, files = _listdir(storage, name)
    for directory in directories:
        _delete_tree(storage, f"{name}/{directory}")
    for file in files:
        storage.delete(f"{name}/{file}")
    storage.delete(name)


def _children(storage: Storage, name: str) -> list[tuple[str, bool]]:
    """The entries directly inside ``name`` as (entry, is_dir), sorted, without in-progress uploads."""
    directories, files = _listdir(storage, name)
    entries = [(entry, True) for entry in directories] + [(entry, False) for entry in files]
    return sorted(item for item in entries if not item[0].startswith(TEMP_PREFIX))


def _walk(storage: Storage, name: str, prefix: str = "") -> Iterator[str]:
    """Every file below ``name`` (relative to it, sorted), without in-progress uploads."""
    for entry, is_dir in _children(storage, name):
        if is_dir:
            yield from _walk(storage, f"{name}/{entry}", f"{prefix}{entry}/")
        else:
            yield f"{prefix}{entry}"


def _walk_disk(folder: Path, prefix: str = "") -> Iterator[str]:
    """Every regular file below ``folder`` (sorted), never following symlinks, without in-progress uploads."""
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.name.startswith(TEMP_PREFIX) or entry.is_symlink():
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _walk_disk(Path(entry.path), f"{prefix}{entry.name}/")
        elif entry.is_file(follow_symlinks=False):
            yield f"{prefix}{entry.name}"


def _copy(stream: IO[bytes] | None, handle: IO[bytes], limit: int | None) -> int:
    """Copy ``stream`` into ``handle`` in ``CHUNK_SIZE`` reads; over ``limit`` bytes is a 413."""
    written = 0
    while stream is not None:
        chunk = stream.read(CHUNK_SIZE)
        if not chunk:
            break
        written += len(chunk)
        if limit is not None and written > limit:
            raise PayloadTooLarge(f"The artifact is over the limit of {limit} bytes.")
        handle.write(chunk)
    return written


# Writing ----------------------------------------------------------------------------------------


def _store_on_disk(run: Run, clean: str, stream: IO[bytes] | None, limit: int | None) -> int:
    """Chunked copy into a temporary file next to the target, then an atomic rename."""
    target = _resolve(run, clean)
    if target.is_dir():
        raise Conflict(f"{clean!r} is a directory.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise Conflict(f"A parent of {clean!r} is a file, not a directory.") from exc
    handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=TEMP_PREFIX, delete=False)  # noqa: SIM115
    try:
        with handle:
            written = _copy(stream, handle, limit)
        os.replace(handle.name, target)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return written


def _store_generic(storage: Storage, run: Run, clean: str, stream: IO[bytes] | None, limit: int | None) -> int:
    """Count the upload into a local spool, then replace the stored file with it under exactly its name."""
    name = _name(run, clean)
    existing = _kind(storage, name)
    if existing is Kind.DIR:
        raise Conflict(f"{clean!r} is a directory.")
    segments = clean.split("/")
    for depth in range(1, len(segments)):
        if _kind(storage, _name(run, "/".join(segments[:depth]))) is Kind.FILE:
            raise Conflict(f"A parent of {clean!r} is a file, not a directory.")
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as spool:
        written = _copy(stream, spool, limit)
        spool.seek(0)
        content = File(spool, name=posixpath.basename(clean))
        content.size = written
        if existing is Kind.FILE:
            storage.delete(name)
        try:
            saved = storage.save(name, content)
        except BaseException:
            if _exists(storage, name):
                storage.delete(name)
            raise
    if saved != name:
        # Storage.save picks another name when the requested one is taken: another upload won the race.
        storage.delete(saved)
        raise Conflict(f"{clean!r} was written by another upload at the same time; retry.")
    return written


def _store(run: Run, clean: str, stream: IO[bytes] | None, limit: int | None) -> int:
    storage = artifact_storage()
    with _storage_errors():
        if _on_disk(storage):
            return _store_on_disk(run, clean, stream, limit)
        return _store_generic(storage, run, clean, stream, limit)


def request_upload(request: Any) -> tuple[IO[bytes], int | None]:
    """The body of an upload request as a stream, and its declared size (None when sent chunked).

    DRF's ``request.stream`` is None for a request without ``Content-Length`` (chunked transfer), which
    would store an empty file; Django's own request reads the body whatever its framing.
    """
    raw_length = request.META.get("CONTENT_LENGTH") or ""
    if raw_length and not raw_length.isdigit():
        raise InvalidInput(
            "Content-Length must be a non-negative integer.", details={"Content-Length": ["Not an integer."]}
        )
    django_request = getattr(request, "_request", request)
    stream = io.BytesIO(django_request.body) if django_request._read_started else django_request
    return stream, int(raw_length) if raw_length else None


def artifact_write(*, user: Any, run: Run, path: str, stream: IO[bytes] | None, size_hint: int | None = None) -> dict:
    """Store an upload at ``path``; over ``ARTIFACT_MAX_UPLOAD_BYTES`` is a 413 and leaves nothing behind."""
    authorize(user, Action.WRITE, run, label="Run")
    _require_writable(run)
    clean = safe_artifact_path(path)
    limit = settings.ARTIFACT_MAX_UPLOAD_BYTES
    if size_hint is not None and size_hint > limit:
        raise PayloadTooLarge(f"The artifact is {size_hint} bytes, over the limit of {limit} bytes.")
    written = _store(run, clean, stream, limit)
    return {"path": clean, "is_dir": False, "file_size": written}


def artifact_restore(*, run: Run, path: str, stream: IO[bytes]) -> int:
    """Store one file as an operator's restore (``import_experiment``): no permission, state or size checks."""
    return _store(run, safe_artifact_path(path), stream, None)


# Reading ----------------------------------------------------------------------------------------


def artifact_open(run: Run, path: str) -> ArtifactFile:
    """Open an artifact file for streaming; directories and missing files are a 404."""
    clean = safe_artifact_path(path)
    basename = posixpath.basename(clean)
    storage = artifact_storage()
    if _on_disk(storage):
        target = _resolve(run, clean)
        if not target.is_file() or target.name.startswith(TEMP_PREFIX):
            raise NotFound(f"Artifact {clean!r} not found.")
        with _storage_errors():
            file = target.open("rb")
        return ArtifactFile(
            file=file, size=os.fstat(file.fileno()).st_size, content_type=_content_type(basename), name=basename
        )
    name = _name(run, clean)
    if basename.startswith(TEMP_PREFIX) or not _exists(storage, name):
        raise NotFound(f"Artifact {clean!r} not found.")
    with _storage_errors():
        try:
            size = storage.size(name)
        except (IsADirectoryError, *MISSING) as exc:
            raise NotFound(f"Artifact {clean!r} not found.") from exc
        file = storage.open(name, "rb")
    return ArtifactFile(file=file, size=size, content_type=_content_type(basename), name=basename)


def artifact_list(run: Run, path: str = "") -> list[dict[str, Any]]:
    """The files and folders directly inside ``path`` (the run's root by default), sorted by path."""
    clean = safe_artifact_path(path, allow_root=True)
    storage = artifact_storage()
    if _on_disk(storage):
        children = _list_disk(run, clean)
    else:
        folder = _name(run, clean)
        children = [
            (entry, is_dir, None if is_dir else storage.size(f"{folder}/{entry}"))
            for entry, is_dir in _children(storage, folder)
        ]
    return [
        {"path": f"{clean}/{entry}" if clean else entry, "is_dir": is_dir, "file_size": size}
        for entry, is_dir, size in children
    ]


def _list_disk(run: Run, clean: str) -> list[tuple[str, bool, int | None]]:
    target = _resolve(run, clean)
    if not target.is_dir():
        return []
    children = []
    for child in sorted(target.iterdir(), key=lambda p: p.name):
        if child.name.startswith(TEMP_PREFIX):
            continue
        is_dir = child.is_dir()
        children.append((child.name, is_dir, None if is_dir else child.stat().st_size))
    return children


def artifact_files(run: Run) -> Iterator[str]:
    """Every file in a run's artifacts as a path relative to its root (for backups), sorted.

    On disk, symlinks are skipped (they could point outside the store), as are in-progress uploads.
    """
    storage = artifact_storage()
    if _on_disk(storage):
        yield from _walk_disk(run_artifact_dir(run))
    else:
        yield from _walk(storage, run_artifact_name(run))


def artifacts_exist(run: Run) -> bool:
    """Whether the store already holds anything (even an empty folder) for this run."""
    storage = artifact_storage()
    if _on_disk(storage):
        return os.path.lexists(run_artifact_dir(run))
    return _kind(storage, run_artifact_name(run)) is not None


# Deleting ---------------------------------------------------------------------------------------


def artifact_delete(*, user: Any, run: Run, path: str, request: Any = None) -> None:
    """Delete an artifact file or folder (admins)."""
    authorize(user, Action.DELETE, run, label="Run")
    _require_writable(run)
    clean = safe_artifact_path(path)
    storage = artifact_storage()
    with _storage_errors():
        if _on_disk(storage):
            target = _resolve(run, clean)
            if target.is_dir():
                shutil.rmtree(target)
            elif target.is_file():
                target.unlink()
            else:
                raise NotFound(f"Artifact {clean!r} not found.")
        else:
            name = _name(run, clean)
            kind = _kind(storage, name)
            if kind is None:
                raise NotFound(f"Artifact {clean!r} not found.")
            if kind is Kind.DIR:
                _delete_tree(storage, name)
            else:
                storage.delete(name)
    audit.record_event(action="artifact.delete", actor=user, request=request, target=run, details={"path": clean})


def _delete_folder_quietly(name: str) -> None:
    """Remove a whole folder of the store, logging (not raising) failures: callers run after a commit."""
    storage = artifact_storage()
    try:
        if _on_disk(storage):
            shutil.rmtree(storage.path(name), ignore_errors=True)
        else:
            _delete_tree(storage, name)
    except Exception:
        logger.exception("could not delete artifact folder %s", name)


def delete_run_artifacts(run: Run) -> None:
    """Remove everything stored for a run (its ``<experiment id>/<run id>`` folder); used by hard deletes."""
    _delete_folder_quietly(f"{run.experiment_id}/{run.run_uuid}")


def delete_experiment_artifacts(experiment_id: int) -> None:
    """Remove everything stored for an experiment (its runs' and logged models' files)."""
    _delete_folder_quietly(str(experiment_id))
