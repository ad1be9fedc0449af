"""``scripts/serve.py``: N daphne processes on one listening socket, stopped together."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
import requests

from bench.servers import children_by_parent
from tests.server import ROOT, start_daphne

SERVE = ROOT / "scripts" / "serve.py"
sys.path.insert(0, str(SERVE.parent))
import serve  # noqa: E402


def test_options_are_checked(monkeypatch):
    with pytest.raises(SystemExit):
        serve.parse_args(["--workers", "0"])
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(SystemExit):
        serve.parse_args(["--workers", "2"])  # several processes need the Redis layer
    assert serve.parse_args(["--workers", "1", "--port", "9"]).port == 9


def workers_of(pid: int) -> list[int]:
    """Child process ids of ``pid``."""
    return children_by_parent().get(pid, [])


@pytest.fixture
def launched(live_server_env, tmp_path):
    """The launcher with two workers when Redis is configured (one otherwise), answering /healthz."""
    count = 2 if os.environ.get("REDIS_URL") else 1
    command = [sys.executable, str(SERVE), "--workers", str(count), "--port", "{port}"]
    server = start_daphne(live_server_env, tmp_path / "serve.log", command=command)
    yield server, count
    server.stop()


@pytest.mark.server
def test_serves_on_one_port_and_stops_every_worker_on_sigterm(launched, transactional_db):
    server, count = launched
    workers = workers_of(server.process.pid)
    assert len(workers) == count
    with requests.Session() as session:
        assert all(session.get(f"{server.url}/healthz", timeout=10).status_code == 200 for _ in range(10))
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0
    assert not [pid for pid in workers if alive(pid)]


@pytest.mark.server
def test_a_dead_worker_stops_the_set_with_an_error(launched, transactional_db):
    server, _count = launched
    first, *others = workers_of(server.process.pid)
    os.kill(first, signal.SIGKILL)
    assert server.process.wait(timeout=30) == 1
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in others) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in others)
    assert "a worker exited" in server.log_tail()


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
