"""Request bodies under daphne (``mlplatform/daphne_body.py``): bounded memory, early 413, disconnects.

The server tests run real daphne processes on the test database and read their memory from
``/proc/<pid>/status``; the others drive :class:`FileBackedBodyQueue` in-process, the way daphne does.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import io
import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import daphne
import pytest

from accounts.models import Role
from accounts.services import api_token_create
from accounts.tests.factories import MembershipFactory, TeamFactory
from experiments.tests.factories import ExperimentFactory, RunFactory
from mlplatform import daphne_body
from mlplatform.daphne_body import BODY_CHUNK_BYTES, ENVELOPE_ALLOWANCE_BYTES, FileBackedBodyQueue
from tests.server import ROOT, Server, start_daphne

MIB = 1024 * 1024
BIG_UPLOAD = 150 * MIB
RSS_GROWTH_LIMIT = 40 * MIB
SMALL_ARTIFACT_LIMIT = 1 * MIB  # the small server: bodies over 2 MiB (this + the envelope allowance) are refused
SMALL_DATA_LIMIT = 64 * 1024
SMALL_BODY_LIMIT = SMALL_ARTIFACT_LIMIT + ENVELOPE_ALLOWANCE_BYTES


# --- in-process: the queue, the guard -------------------------------------------------------------------------


def spooled(data: bytes) -> Any:
    """A body spooled the way Twisted does it (``tempfile.TemporaryFile``), positioned at its start."""
    content = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the test)
    content.write(data)
    content.seek(0)
    return content


def feed_like_daphne(queue: asyncio.Queue, content: Any, buffer_size: int = 8192) -> int:
    """daphne 4.2.3's read loop in ``WebRequest.process``; returns how many reads it made."""
    reads = 0
    while True:
        chunk = content.read(buffer_size)
        reads += 1
        more_body = not (len(chunk) < buffer_size)
        queue.put_nowait({"type": "http.request", "body": chunk, "more_body": more_body})
        if not more_body:
            return reads


async def drain(queue: asyncio.Queue) -> list[dict[str, Any]]:
    """Every message up to and including the one without ``more_body`` (or a disconnect)."""
    messages = []
    while True:
        message = await queue.get()
        messages.append(message)
        if message["type"] != "http.request" or not message["more_body"]:
            return messages


async def test_queue_serves_the_body_from_the_file_without_keeping_it():
    data = os.urandom(300_000)
    content = spooled(data)
    queue = FileBackedBodyQueue(content)
    reads = feed_like_daphne(queue, content)
    assert reads == 2  # daphne's loop was moved to the end of the file after its first chunk
    assert queue.qsize() == 1  # one byte range, no body bytes
    assert not any(isinstance(item, dict) for item in queue._queue)  # type: ignore[attr-defined]
    queue.put_nowait({"type": "http.disconnect"})
    messages = await drain(queue)
    assert b"".join(m["body"] for m in messages) == data
    assert [len(m["body"]) for m in messages[:-1]] == [BODY_CHUNK_BYTES] * (len(messages) - 1)
    assert [m["more_body"] for m in messages] == [True] * (len(messages) - 1) + [False]
    assert content.tell() == len(data)  # pread left the file where daphne's loop did
    assert await queue.get() == {"type": "http.disconnect"}
    content.close()


async def test_queue_handles_bodies_of_exact_buffer_multiples_and_empty_ones():
    for size in (0, 8192, 3 * BODY_CHUNK_BYTES):
        data = os.urandom(size)
        content = spooled(data)
        queue = FileBackedBodyQueue(content)
        feed_like_daphne(queue, content)
        messages = await drain(queue)
        assert b"".join(m["body"] for m in messages) == data
        assert messages[-1]["more_body"] is False
        content.close()


async def test_queue_answers_disconnect_once_the_file_is_closed():
    content = spooled(os.urandom(500_000))
    queue = FileBackedBodyQueue(content)
    feed_like_daphne(queue, content)
    first = await queue.get()
    assert first["type"] == "http.request" and first["more_body"] is True
    content.close()  # what Twisted does when the connection is lost
    assert await queue.get() == {"type": "http.disconnect"}


def test_only_http_bodies_spooled_to_a_file_get_the_file_backed_queue():
    class Protocol:
        def __init__(self, content: Any) -> None:
            self.content = content

    spool = spooled(b"x" * 10)
    assert type(daphne_body.input_queue_for(Protocol(spool), {"type": "http"})) is FileBackedBodyQueue
    assert type(daphne_body.input_queue_for(Protocol(io.BytesIO(b"{}")), {"type": "http"})) is asyncio.Queue
    assert type(daphne_body.input_queue_for(Protocol(spool), {"type": "websocket"})) is asyncio.Queue
    assert type(daphne_body.input_queue_for(object(), {"type": "websocket"})) is asyncio.Queue
    sink = daphne_body.DiscardedBody(10)
    assert type(daphne_body.input_queue_for(Protocol(sink), {"type": "http"})) is asyncio.Queue
    spool.close()
    assert type(daphne_body.input_queue_for(Protocol(spool), {"type": "http"})) is asyncio.Queue


def test_the_patch_is_written_for_the_pinned_daphne(monkeypatch):
    pinned = re.search(r"^daphne==(\S+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert pinned is not None
    assert pinned.group(1) == daphne_body.PINNED_DAPHNE_VERSION == daphne.__version__
    daphne_body.check_versions()
    monkeypatch.setattr(daphne, "__version__", "99.0")
    with pytest.raises(daphne_body.DaphneVersionMismatch, match=r"99\.0"):
        daphne_body.check_versions()


def test_importing_the_asgi_application_applies_the_patch_once():
    import daphne.http_protocol
    import daphne.server

    import mlplatform.asgi  # noqa: F401

    assert daphne_body.is_applied()
    assert daphne.server.Server.create_application is daphne_body.create_application
    assert daphne.http_protocol.WebRequest.process is daphne_body.process
    daphne_body.apply()
    assert daphne.server.Server.create_application is daphne_body.create_application


def test_body_limit_is_the_largest_accepted_body_plus_the_allowance(settings):
    settings.ARTIFACT_MAX_UPLOAD_BYTES = 5 * MIB
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * MIB
    assert daphne_body.body_limit() == 5 * MIB + ENVELOPE_ALLOWANCE_BYTES
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 9 * MIB
    assert daphne_body.body_limit() == 9 * MIB + ENVELOPE_ALLOWANCE_BYTES


# --- real daphne processes ------------------------------------------------------------------------------------


def proc_status(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/<pid>/status, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def spool_files(pid: int) -> int:
    """How many unlinked files (Twisted's ``TemporaryFile`` spools) the process has open."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.endswith("(deleted)"):
            count += 1
    return count


def connect(server: Server) -> http.client.HTTPConnection:
    parts = urlsplit(server.url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)


def request(
    server: Server,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """Send a request (a generator body without Content-Length goes chunked) and read the whole answer."""
    conn = conn or connect(server)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def blocks(size: int, block: int = MIB, seed: bytes = b"") -> tuple[Iterator[bytes], Any]:
    """A deterministic body of ``size`` bytes as a generator of blocks, and the sha256 it fills as it goes."""
    base = hashlib.sha256(seed).digest() * (block // 32)
    digest = hashlib.sha256()

    def generate() -> Iterator[bytes]:
        sent = 0
        index = 0
        while sent < size:
            chunk = (index.to_bytes(8, "big") + base[8:])[: size - sent]
            digest.update(chunk)
            sent += len(chunk)
            index += 1
            yield chunk

    return generate(), digest


def download_digest(server: Server, path: str, token: str) -> tuple[int, str]:
    """Size and sha256 of a download, read in chunks."""
    conn = connect(server)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    assert response.status == 200
    digest, size = hashlib.sha256(), 0
    while chunk := response.read(MIB):
        digest.update(chunk)
        size += len(chunk)
    conn.close()
    return size, digest.hexdigest()


def chunked_json_post_works(server: Server, world: dict[str, Any], padding: int) -> bool:
    """A chunked JSON POST (MLflow log-parameter, padded to span many chunks) is stored, as GET shows."""
    run_id = world["run"].run_uuid
    text = json.dumps({"run_id": run_id, "key": "chunked", "value": "yes"}) + " " * padding
    status, _, body = request(
        server,
        "POST",
        "/api/2.0/mlflow/runs/log-parameter",
        iter([text[i : i + 8000].encode() for i in range(0, len(text), 8000)]),
        {**world["auth"], "Content-Type": "application/json"},
    )
    assert status == 200, body
    status, _, body = request(server, "GET", f"/api/2.0/mlflow/runs/get?run_id={run_id}", headers=world["auth"])
    assert status == 200, body
    return {"key": "chunked", "value": "yes"} in json.loads(body)["run"]["data"]["params"]


def artifact_files(root: Path) -> list[Path]:
    """Every file under the artifact store, temp files included."""
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


@pytest.fixture(scope="module")
def big_server(live_server_env, tmp_path_factory) -> Iterator[tuple[Server, Path]]:
    """daphne with the default limits (1 GiB artifacts) and its own artifact store."""
    folder = tmp_path_factory.mktemp("daphne-body-big")
    env = {**live_server_env, "ARTIFACT_ROOT": str(folder / "artifacts")}
    server = start_daphne(env, folder / "daphne.log")
    yield server, folder / "artifacts"
    server.stop()


@pytest.fixture(scope="module")
def small_server(live_server_env, tmp_path_factory) -> Iterator[tuple[Server, Path]]:
    """daphne with small limits: artifacts up to 1 MiB, other bodies up to 64 KiB, so 2 MiB is the cap."""
    folder = tmp_path_factory.mktemp("daphne-body-small")
    env = {
        **live_server_env,
        "ARTIFACT_ROOT": str(folder / "artifacts"),
        "ARTIFACT_MAX_UPLOAD_BYTES": str(SMALL_ARTIFACT_LIMIT),
        "DATA_UPLOAD_MAX_MEMORY_SIZE": str(SMALL_DATA_LIMIT),
    }
    server = start_daphne(env, folder / "daphne.log")
    yield server, folder / "artifacts"
    server.stop()


@pytest.fixture
def world(transactional_db) -> dict[str, Any]:
    team = TeamFactory(name="daphne-body")
    editor = MembershipFactory(team=team, role=Role.EDITOR).user
    run = RunFactory(experiment=ExperimentFactory(team=team))
    token = api_token_create(user=editor, name="uploader")[1]
    return {
        "run": run,
        "token": token,
        "auth": {"Authorization": f"Bearer {token}"},
        "artifacts": f"/api/v1/runs/{run.run_uuid}/artifacts/",
    }


def assert_413_envelope(status: int, headers: dict[str, str], body: bytes, limit: int) -> None:
    assert status == 413, body[:500]
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == "payload_too_large"
    assert str(limit) in error["message"]
    assert error["details"] == {"limit_bytes": limit}


@pytest.mark.server
def test_a_150_mb_upload_does_not_grow_the_server_and_arrives_intact(big_server, world):
    server, _root = big_server
    pid = server.process.pid
    auth = world["auth"]
    # Warm-up, and the bodies that must keep working: a small JSON POST (BytesIO) and a chunked upload.
    points = {"metrics": [{"key": "loss", "value": 0.5, "step": 1}]}
    status, _, body = request(
        server,
        "POST",
        f"/api/v1/runs/{world['run'].run_uuid}/log-batch/",
        json.dumps(points).encode(),
        {**auth, "Content-Type": "application/json"},
    )
    assert status == 200, body
    assert chunked_json_post_works(server, world, padding=300_000)
    rss_before = proc_status(pid, "VmRSS")
    peak_before = proc_status(pid, "VmHWM")

    payload, digest = blocks(BIG_UPLOAD, seed=b"big")
    headers = {**auth, "Content-Length": str(BIG_UPLOAD), "Content-Type": "application/octet-stream"}
    status, _, body = request(server, "PUT", world["artifacts"] + "model/weights.bin", payload, headers)
    assert status == 201, body
    assert json.loads(body)["file_size"] == BIG_UPLOAD
    peak_after = proc_status(pid, "VmHWM")
    growth = peak_after - rss_before
    print(  # the numbers the report quotes (pytest -s)
        f"RSS before {rss_before / MIB:.1f} MiB, peak before {peak_before / MIB:.1f} MiB, "
        f"peak after a {BIG_UPLOAD // MIB} MiB upload {peak_after / MIB:.1f} MiB (+{growth / MIB:.1f} MiB)"
    )
    assert growth < RSS_GROWTH_LIMIT, f"the server grew by {growth / MIB:.0f} MiB for a {BIG_UPLOAD // MIB} MiB body"
    assert download_digest(server, world["artifacts"] + "model/weights.bin", world["token"]) == (
        BIG_UPLOAD,
        digest.hexdigest(),
    )


@pytest.mark.server
def test_a_content_length_over_the_limit_is_refused_unspooled_and_nothing_is_written(small_server, world):
    server, root = small_server
    pid = server.process.pid
    over = SMALL_BODY_LIMIT + 1
    spools_idle = spool_files(pid)

    # While an over-limit body arrives, nothing is spooled to disk (an under-limit one is, as a control).
    for size, spooled_files in ((SMALL_ARTIFACT_LIMIT + MIB // 2, 1), (over, 0)):
        with socket.create_connection((urlsplit(server.url).hostname, urlsplit(server.url).port)) as sock:
            sock.sendall(
                f"PUT {world['artifacts']}partial.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Length: {size}\r\n\r\n".encode()
                + b"x" * 200_000
            )
            deadline = time.monotonic() + 2
            while spool_files(pid) - spools_idle != spooled_files and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.1)
            assert spool_files(pid) - spools_idle == spooled_files, f"{size}-byte body"

    # Anonymous: refused for its size before anything else looks at it; the connection stays usable.
    conn = connect(server)
    status, headers, body = request(
        server, "PUT", world["artifacts"] + "anon.bin", b"\0" * over, {"Content-Type": "application/octet-stream"}, conn
    )
    assert_413_envelope(status, headers, body, SMALL_BODY_LIMIT)
    status, _, _ = request(server, "GET", "/healthz", conn=conn)
    assert status == 200
    conn.close()

    # An editor: the same 413, and no file (nor temp file) in the store.
    status, headers, body = request(server, "PUT", world["artifacts"] + "big.bin", b"\0" * over, world["auth"])
    assert_413_envelope(status, headers, body, SMALL_BODY_LIMIT)
    # Between the artifact limit and the cap, Django's own check answers (the view's 413, same envelope).
    status, _, body = request(server, "PUT", world["artifacts"] + "big.bin", b"\0" * (over - MIB), world["auth"])
    assert status == 413
    assert json.loads(body)["error"]["code"] == "payload_too_large"
    assert artifact_files(root) == []


@pytest.mark.server
def test_chunked_and_form_bodies_reach_django_and_chunked_ones_are_refused_past_the_limit(small_server, world):
    server, root = small_server
    auth = world["auth"]
    # Twisted no longer parses form bodies itself (it answered a multipart POST without boundary with a bodyless
    # 400, after reading the whole body into memory): Django answers, in the envelope.
    status, _, body = request(
        server,
        "POST",
        f"/api/v1/runs/{world['run'].run_uuid}/log-batch/",
        b"a=1",
        {**auth, "Content-Type": "multipart/form-data"},
    )
    assert status == 415, body
    assert json.loads(body)["error"]["code"] == "unsupported_media_type"
    assert chunked_json_post_works(server, world, padding=50_000)
    status, _, body = request(
        server,
        "POST",
        f"/api/v1/runs/{world['run'].run_uuid}/log-batch/",
        json.dumps({"params": [{"key": "lr", "value": "0.1"}]}).encode(),
        {**auth, "Content-Type": "application/json"},
    )
    assert status == 200, body

    for who in ({}, auth):
        payload, _ = blocks(SMALL_BODY_LIMIT + 300_000, block=100_000)
        status, headers, body = request(server, "PUT", world["artifacts"] + "too-big.bin", payload, who)
        assert_413_envelope(status, headers, body, SMALL_BODY_LIMIT)
    assert artifact_files(root) == []


@pytest.mark.server
def test_a_client_that_disconnects_does_not_crash_the_server_nor_store_a_partial_upload(big_server, world):
    server, root = big_server
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    head = "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Length: {size}\r\n\r\n"

    # Gone in the middle of the body.
    with socket.create_connection((host, port)) as sock:
        sock.sendall(head.format(path=world["artifacts"] + "cut.bin", token=world["token"], size=20 * MIB).encode())
        sock.sendall(b"x" * (5 * MIB))
    # Gone right after the body, before the answer: the application gets http.disconnect, the view never runs.
    with socket.create_connection((host, port)) as sock:
        sock.sendall(head.format(path=world["artifacts"] + "gone.bin", token=world["token"], size=30 * MIB).encode())
        sock.sendall(b"y" * (30 * MIB))
        sock.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        names = {p.name for p in artifact_files(root)}
        assert "gone.bin" not in names and "cut.bin" not in names, "an abandoned upload was stored"
        time.sleep(0.05)
    assert server.process.poll() is None
    status, _, _ = request(server, "GET", "/healthz")
    assert status == 200
    assert "Traceback" not in server.log()
