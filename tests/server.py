"""Start a real daphne process against the test database, for tests about the server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DAPHNE = Path(sys.executable).with_name("daphne")


def free_port() -> int:
    """Ask the OS for a free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(settings_dict: dict[str, Any]) -> str:
    """A DATABASE_URL for the database Django is connected to (the test database in tests)."""
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(settings_dict['NAME']).resolve()}"
    user = settings_dict.get("USER") or "postgres"
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or "5432"
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


@dataclass
class Server:
    """A running daphne process."""

    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        """What the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the log, for failure messages."""
        return self.log()[-chars:]

    def stop(self) -> None:
        """Terminate and reap the process."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def server_env(db_url: str, **extra: str) -> dict[str, str]:
    """Production-like environment: DEBUG off, a real secret, the given database."""
    # Never hand a server the test-only escape hatches of the process that starts it.
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update(
        {
            "DEBUG": "0",
            "SECRET_KEY": "server-test-secret-" + "y" * 40,
            "DATABASE_URL": db_url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SETTINGS_MODULE": "mlplatform.settings",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def start_daphne(
    env: dict[str, str],
    log_path: Path,
    *,
    wait_for: str = "/healthz",
    ok_statuses=(200,),
    command: list[str] | None = None,
) -> Server:
    """Start daphne on a free port and wait until ``wait_for`` answers one of ``ok_statuses``.

    ``command`` replaces the daphne command line; ``{port}`` in it is the free port.
    """
    port = free_port()
    log_file = log_path.open("wb")
    default = [str(DAPHNE), "-b", "127.0.0.1", "-p", "{port}", "mlplatform.asgi:application"]
    process = subprocess.Popen(
        [part.replace("{port}", str(port)) for part in command or default],
        cwd=ROOT,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    server = Server(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited with {process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url + wait_for, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            time.sleep(0.1)
            continue
        if status in ok_statuses:
            return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"daphne did not answer {wait_for} in time:\n{server.log_tail()}")
