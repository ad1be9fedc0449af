"""Start and stop the servers under test the way an operator would run them in production.

- ours: ``migrate``, a real user and API token (``bench/ours_setup.py``), then daphne (or uvicorn
  workers, or several daphne processes sharing one listening socket) with ``DEBUG=0``;
- mlflow: stock ``mlflow server`` from its own venv, 2 workers, ``--serve-artifacts``;
- fasttrackml: ``fml server`` from its own venv.

Each server gets a fresh database (PostgreSQL: dropped and re-created; SQLite: a new file) so every
run starts from the same state. Everything started here is stopped by :meth:`ManagedServer.stop`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_VAR = Path(os.environ.get("BENCH_VAR_DIR", ROOT / "var" / "bench"))
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
MLFLOW_VENV = Path(os.environ.get("BENCH_MLFLOW_VENV", BENCH_VAR / "mlflow-venv"))
FML_VENV = Path(os.environ.get("BENCH_FML_VENV", BENCH_VAR / "fml-venv"))
VENV_BIN = Path(sys.executable).parent
SECRET_KEY = "bench-secret-key-" + "b" * 48  # a throwaway key for a local benchmark server


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reset_postgres_database(name: str) -> str:
    """Drop and re-create database ``name``; returns its URL."""
    import psycopg

    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{PG_URL}/{name}"


def children_by_parent() -> dict[int, list[int]]:
    """Every process's direct children, by parent pid (read from /proc once)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children = children_by_parent()
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds_of_tree(pid: int) -> float:
    """User + system CPU seconds used so far by a process tree (live processes only)."""
    ticks = 0
    for member in _descendants(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def memory_of_tree(pid: int) -> dict[str, float]:
    """RSS and PSS (proportional: shared pages split between processes) of a process tree, in MiB."""
    rss = pss = 0
    processes = 0
    for member in _descendants(pid):
        try:
            rollup = Path(f"/proc/{member}/smaps_rollup").read_text()
        except OSError:
            continue
        processes += 1
        for line in rollup.splitlines():
            if line.startswith("Rss:"):
                rss += int(line.split()[1])
            elif line.startswith("Pss:"):
                pss += int(line.split()[1])
    return {"rss_mib": round(rss / 1024, 1), "pss_mib": round(pss / 1024, 1), "processes": processes}


@dataclass
class ManagedServer:
    """A server process (tree) started by the benchmark."""

    name: str
    url: str
    command: list[str]
    headers: dict[str, str] = field(default_factory=dict)
    description: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    seed: Callable[[int, str], tuple[str, list[str]]] | None = None
    database: str | None = None  # the PostgreSQL database name, to ANALYZE after seeding

    def analyze(self) -> None:
        """Refresh PostgreSQL planner statistics after bulk seeding, as autovacuum would a minute later.

        Without it a freshly loaded table is planned as if empty (nested loops over 100k rows).
        """
        if self.database is None:
            return
        import psycopg

        with psycopg.connect(f"{PG_URL}/{self.database}", autocommit=True) as conn:
            conn.execute("ANALYZE")

    def start(self, env: dict[str, str], *, ready_path: str, timeout: float = 240) -> None:
        """Start the command in its own process group and wait until ``ready_path`` answers 200."""
        BENCH_VAR.mkdir(parents=True, exist_ok=True)
        self.log_path = BENCH_VAR / f"{self.name}.log"
        self.env = env
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_ready(ready_path, timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, ready_path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + ready_path, timeout=5) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} did not become ready in {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's log."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def memory(self) -> dict[str, float]:
        """Memory of the whole server process tree."""
        if self.process is None:
            return {}
        return memory_of_tree(self.process.pid)

    def cpu_seconds(self) -> float:
        """CPU seconds used by the whole server process tree so far (not the database's)."""
        if self.process is None:
            return 0.0
        return cpu_seconds_of_tree(self.process.pid)

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it after 15 s."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass


def _seed_with(command: list[str], env: dict[str, str], runs: int, name: str) -> tuple[str, list[str]]:
    """Run a seeding script (bench/seed_*.py); returns (experiment id, run ids) from its last output line."""
    out = subprocess.run(
        [*command, "--runs", str(runs), "--name", name],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return data["experiment_id"], data["run_ids"]


# Ours ------------------------------------------------------------------------------------------


def ours_env(backend: str) -> dict[str, str]:
    """Production settings for our server: DEBUG off, a real secret, a dedicated database."""
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL"}}
    var = BENCH_VAR / f"ours-{backend}"
    env.update(
        {
            "DEBUG": "0",
            "SECRET_KEY": SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SETTINGS_MODULE": "mlplatform.settings",
            "MLPLATFORM_VAR_DIR": str(var),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if backend == "pg":
        env["DATABASE_URL"] = f"{PG_URL}/bench_ours"
        env["REDIS_URL"] = REDIS_URL
    else:
        env["DATABASE_URL"] = f"sqlite:///{var / 'db.sqlite3'}"
    return env


def prepare_ours(backend: str) -> dict[str, str]:
    """Fresh database, migrations, a user with an API token; returns the env with ``BENCH_TOKEN`` set."""
    env = ours_env(backend)
    var = Path(env["MLPLATFORM_VAR_DIR"])
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    if backend == "pg":
        reset_postgres_database("bench_ours")
    python = str(VENV_BIN / "python")
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run(
        [python, "-m", "bench.ours_setup"], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout
    env["BENCH_TOKEN"] = json.loads(out.strip().splitlines()[-1])["token"]
    return env


def start_ours(backend: str, *, server: str = "daphne", workers: int = 1) -> ManagedServer:
    """Prepare and start our server; ``server`` is daphne or uvicorn, ``workers`` processes on one port."""
    env = prepare_ours(backend)
    token = env.pop("BENCH_TOKEN")
    port = free_port()
    if server == "daphne" and workers == 1:
        command = [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "mlplatform.asgi:application"]
    elif server == "daphne":
        # The documented production launcher: N daphne processes accepting on one socket it binds.
        command = [
            str(VENV_BIN / "python"),
            str(ROOT / "scripts" / "serve.py"),
            "--workers",
            str(workers),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
    elif server == "uvicorn":
        command = [
            str(VENV_BIN / "uvicorn"),
            "mlplatform.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
            "--timeout-worker-healthcheck",
            "60",
        ]
    else:
        raise ValueError(f"unknown server {server!r}")
    managed = ManagedServer(
        name=f"ours-{backend}",
        url=f"http://127.0.0.1:{port}",
        command=command,
        headers={"Authorization": f"Bearer {token}"},
        description={"server": server, "workers": str(workers), "database": env["DATABASE_URL"].split("@")[-1]},
    )
    managed.seed = lambda runs, name: _seed_with([str(VENV_BIN / "python"), "-m", "bench.seed_ours"], env, runs, name)
    managed.database = "bench_ours" if backend == "pg" else None
    managed.start(env, ready_path="/healthz")
    return managed


# MLflow ----------------------------------------------------------------------------------------


def start_mlflow(backend: str, *, workers: int = 2) -> ManagedServer:
    """Stock ``mlflow server``: backend store on a fresh database, proxied artifacts, ``workers`` workers."""
    mlflow = MLFLOW_VENV / "bin" / "mlflow"
    if not mlflow.exists():
        raise RuntimeError(f"{mlflow} not found: run `make bench-mlflow` (it installs mlflow into {MLFLOW_VENV})")
    var = BENCH_VAR / f"mlflow-{backend}"
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    if backend == "pg":
        store = reset_postgres_database("bench_mlflow").replace("postgres://", "postgresql+psycopg2://", 1)
    else:
        store = f"sqlite:///{var / 'mlflow.db'}"
    port = free_port()
    command = [
        str(mlflow),
        "server",
        "--backend-store-uri",
        store,
        "--serve-artifacts",
        "--artifacts-destination",
        str(var / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        # uvicorn kills a worker that misses a 5 s health check; on a loaded 2-core machine that happens
        # under load and looks like a crash. A longer check changes nothing else about request handling.
        "--uvicorn-opts",
        "--timeout-worker-healthcheck 60",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DJANGO_"))}
    managed = ManagedServer(
        name=f"mlflow-{backend}",
        url=f"http://127.0.0.1:{port}",
        command=command,
        description={"server": "mlflow server", "workers": str(workers), "database": store.split("@")[-1]},
    )
    python = str(MLFLOW_VENV / "bin" / "python")
    seed = [python, "-m", "bench.seed_mlflow", "--store", store, "--artifacts", str(var / "artifacts")]
    managed.seed = lambda runs, name: _seed_with(seed, env, runs, name)
    managed.database = "bench_mlflow" if backend == "pg" else None
    managed.start(env, ready_path="/health")
    return managed


# FastTrackML -----------------------------------------------------------------------------------


def start_fasttrackml(backend: str) -> ManagedServer:
    """``fml server`` on a fresh database."""
    fml = FML_VENV / "bin" / "fml"
    if not fml.exists():
        raise RuntimeError(f"{fml} not found: run `make bench-fasttrackml` (it installs fasttrackml into {FML_VENV})")
    var = BENCH_VAR / f"fml-{backend}"
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    database = reset_postgres_database("bench_fml") if backend == "pg" else f"sqlite://{var / 'fml.db'}"
    port = free_port()
    command = [
        str(fml),
        "server",
        "--listen-address",
        f"127.0.0.1:{port}",
        "--database-uri",
        database,
        "--default-artifact-root",
        str(var / "artifacts"),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DJANGO_", "FML_"))}
    managed = ManagedServer(
        name=f"fasttrackml-{backend}",
        url=f"http://127.0.0.1:{port}",
        command=command,
        description={"server": "fml server", "workers": "1 (Go runtime)", "database": database.split("@")[-1]},
        database="bench_fml" if backend == "pg" else None,
    )
    managed.start(env, ready_path="/health")
    return managed


def start_empty_asgi() -> ManagedServer:
    """daphne serving bench/empty_asgi.py: the per-request floor of the ASGI server on this machine right now."""
    port = free_port()
    managed = ManagedServer(
        name="empty-asgi",
        url=f"http://127.0.0.1:{port}",
        command=[str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "bench.empty_asgi:application"],
    )
    managed.start(dict(os.environ), ready_path="/")
    return managed


def start(target: str, backend: str, *, server: str = "daphne", workers: int = 1) -> ManagedServer:
    """Start the named target on the named backend."""
    if target == "ours":
        return start_ours(backend, server=server, workers=workers)
    if target == "mlflow":
        return start_mlflow(backend)
    if target == "fasttrackml":
        return start_fasttrackml(backend)
    raise ValueError(f"unknown target {target!r}")
