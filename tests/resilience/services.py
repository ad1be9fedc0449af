"""Private PostgreSQL and Redis processes for fault-injection tests (never the machine's shared ones).

Each starts on a free port in a temporary folder, can be stopped and started again on the same port and
data, and is torn down at the end. Tests using them are marked ``postgres`` and skip, with the reason, when
the server binaries are not installed.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.server import ROOT, free_port

PYTHON = sys.executable


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL server's bin folder, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


@dataclass
class PrivatePostgres:
    """A throwaway PostgreSQL cluster owned by one test module."""

    bin: Path
    folder: Path
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "mlplatform") -> str:
        """DATABASE_URL for a database of this cluster; short pool timeout so an outage answers fast."""
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}?pool_timeout=2"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "server.log"), *args],
            check=True,
            capture_output=True,
            timeout=60,
            **_as_postgres_user(),
        )

    def init(self) -> None:
        """Create the cluster and the ``mlplatform`` database, and start it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        _chown_for_postgres(self.folder)
        subprocess.run(
            [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
            timeout=120,
            **_as_postgres_user(),
        )
        self.start()
        subprocess.run(
            [str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "mlplatform"],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        """Start (or restart after ``stop``) on the same port and data."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
        self._ctl("-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``fast`` rolls back open transactions and disconnects every client."""
        self._ctl("-m", mode, "-w", "stop")

    def destroy(self) -> None:
        """Stop if running and delete the cluster."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def migrate(self) -> None:
        """Create the schema with the project's migrations."""
        manage(self.url(), "migrate", "--noinput")


def _as_postgres_user() -> dict:
    """initdb/pg_ctl refuse to run as root: drop to the ``postgres`` system user when we are root."""
    if os.geteuid() != 0:
        return {}
    import pwd

    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _chown_for_postgres(folder: Path) -> None:
    if os.geteuid() == 0:
        import pwd

        entry = pwd.getpwnam("postgres")
        os.chown(folder, entry.pw_uid, entry.pw_gid)


@dataclass
class PrivateRedis:
    """A throwaway redis-server (no persistence) owned by one test module."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start on this object's port and wait until it answers PING."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.folder,
            stdout=(self.folder / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ping = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True, timeout=5, check=False
            )
            if ping.stdout.strip() == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        """Kill the server (a crash: nothing is saved)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


def manage(database_url: str, *args: str, extra_env: dict[str, str] | None = None) -> str:
    """Run ``manage.py`` against another database; returns stdout."""
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL"}}
    env.update({"DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "mlplatform.settings_test"})
    env.update(extra_env or {})
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


CREATE_TOKEN = """
from accounts.models import Role
from accounts.services import api_token_create
from accounts.tests.factories import MembershipFactory, TeamFactory
from experiments import services
team = TeamFactory(name="faults")
user = MembershipFactory(team=team, role=Role.ADMIN).user
_, token = api_token_create(user=user, name="faults")
experiment = services.experiment_create(user=user, team=team, name="faults")
print(token, experiment.pk)
"""


def seed_token(database_url: str) -> tuple[str, int]:
    """An admin's API token and an experiment id in a fresh database."""
    token, experiment_id = manage(database_url, "shell", "-c", CREATE_TOKEN).split()[-2:]
    return token, int(experiment_id)


def require_postgres_binaries() -> Path:
    """The PostgreSQL bin folder, or skip the test saying why."""
    found = postgres_bin()
    if found is None:
        pytest.skip("PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb) are not installed")
    return found


def require_redis_binary() -> None:
    """Skip the test, saying why, when redis-server is not installed."""
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server/redis-cli are not installed")
