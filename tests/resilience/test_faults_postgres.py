"""PostgreSQL restarted while clients log metrics through a real daphne.

Injected: ``pg_ctl stop -m fast`` (every connection dropped, open transactions rolled back) for two seconds
while three writers send 50-point log-batch requests in a loop through the native API and one through the MLflow
façade. Expected: requests in flight or arriving during the outage answer 503 with Retry-After (the native
envelope, or MLflow's ``TEMPORARILY_UNAVAILABLE``), never 500; no batch is half-written, the server recovers
without a restart, and writers that retry on 503 lose no point (every point counted in the database afterwards).
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest
import requests

from tests.resilience.services import PrivatePostgres, require_postgres_binaries, seed_token
from tests.server import server_env, start_daphne

pytestmark = [pytest.mark.postgres, pytest.mark.server]

WRITERS = 3  # through the native API, plus one through the MLflow façade
BATCH = 50
BATCHES_PER_WRITER = 40


@pytest.fixture(scope="module")
def private_postgres():
    """A private cluster with the schema migrated."""
    cluster = PrivatePostgres(bin=require_postgres_binaries(), folder=Path(tempfile.mkdtemp(prefix="mlplatform-pg-")))
    try:
        cluster.init()
        cluster.migrate()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="module")
def pg_server(private_postgres, tmp_path_factory):
    """daphne on the private cluster."""
    env = server_env(private_postgres.url())
    env.pop("REDIS_URL", None)
    server = start_daphne(env, tmp_path_factory.mktemp("pg-faults") / "daphne.log")
    yield server
    server.stop()


class Writer(threading.Thread):
    """Logs BATCHES_PER_WRITER batches to its own run, retrying each batch until it is accepted."""

    def __init__(self, url: str, token: str, experiment_id: int, *, mlflow: bool = False) -> None:
        super().__init__(daemon=True)
        self.mlflow = mlflow
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.url, self.experiment_id = url, experiment_id
        self.statuses: Counter[int] = Counter()
        self.bad: list[str] = []
        self.run_id = ""
        self.accepted = 0  # batches stored so far

    def post(self, path: str, body: dict) -> requests.Response | None:
        try:
            response = self.session.post(self.url + path, json=body, timeout=30)
        except requests.RequestException as exc:  # the server itself must stay up
            self.bad.append(f"connection error: {exc}")
            return None
        self.statuses[response.status_code] += 1
        if response.status_code >= 500 and response.status_code != 503:
            self.bad.append(f"{response.status_code}: {response.text[:300]}")
        if response.status_code == 503:
            body = response.json()
            code = body.get("error_code") if self.mlflow else body["error"]["code"]
            if code != ("TEMPORARILY_UNAVAILABLE" if self.mlflow else "unavailable"):
                self.bad.append(f"503 without the unavailable error: {response.text[:300]}")
            if "Retry-After" not in response.headers:
                self.bad.append(f"503 without Retry-After: {response.text[:300]}")
        return response

    def create_run(self) -> requests.Response | None:
        if self.mlflow:
            return self.post("/api/2.0/mlflow/runs/create", {"experiment_id": str(self.experiment_id)})
        return self.post("/api/v1/runs/", {"experiment_id": self.experiment_id})

    def log_batch(self, metrics: list[dict]) -> requests.Response | None:
        if self.mlflow:
            return self.post("/api/2.0/mlflow/runs/log-batch", {"run_id": self.run_id, "metrics": metrics})
        return self.post(f"/api/v1/runs/{self.run_id}/log-batch/", {"metrics": metrics})

    def run(self) -> None:
        while not self.run_id:
            response = self.create_run()
            if response is not None and response.status_code in {200, 201}:
                body = response.json()
                self.run_id = body["run"]["info"]["run_id"] if self.mlflow else body["run_id"]
            elif response is None or response.status_code != 503:
                self.bad.append(f"run not created: {response.text[:300] if response is not None else 'no answer'}")
                return
            time.sleep(0.05)
        for batch in range(BATCHES_PER_WRITER):
            metrics = [
                {"key": "loss", "value": float(step), "step": step, "timestamp": 1}
                for step in range(batch * BATCH, (batch + 1) * BATCH)
            ]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                response = self.log_batch(metrics)
                if response is not None and response.status_code == 200:
                    self.accepted += 1
                    break
                time.sleep(0.1)
            else:
                self.bad.append(f"batch {batch} never accepted")
                return


def test_postgres_restart_answers_503_loses_nothing_and_recovers(private_postgres, pg_server) -> None:
    token, experiment_id = seed_token(private_postgres.url())
    writers = [Writer(pg_server.url, token, experiment_id) for _ in range(WRITERS)]
    writers.append(Writer(pg_server.url, token, experiment_id, mlflow=True))
    for writer in writers:
        writer.start()
    # Cut the database once every writer is logging (a fixed sleep let fast writers finish before the outage).
    deadline = time.monotonic() + 60
    while min(writer.accepted for writer in writers) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    private_postgres.stop("fast")
    time.sleep(2)
    private_postgres.start()
    for writer in writers:
        writer.join(timeout=120)

    statuses = sum((writer.statuses for writer in writers), Counter())
    problems = [problem for writer in writers for problem in writer.bad]
    assert not problems, problems[:10]
    assert statuses[503] > 0, f"the outage was not observed: {statuses}"
    assert writers[-1].statuses[503] > 0, f"the MLflow writer did not see the outage: {writers[-1].statuses}"
    assert set(statuses) <= {200, 201, 503}, statuses

    health = requests.get(pg_server.url + "/healthz", timeout=10)
    assert health.status_code == 200, health.text
    with psycopg.connect(private_postgres.url().split("?")[0]) as connection:
        for writer in writers:
            rows = connection.execute(
                "SELECT m.step, COUNT(*) FROM experiments_metric m JOIN experiments_run r ON r.id = m.run_id "
                "WHERE r.run_uuid = %s GROUP BY m.step",
                [writer.run_id],
            ).fetchall()
            per_step = dict(rows)
            assert sorted(per_step) == list(range(BATCHES_PER_WRITER * BATCH)), "points lost"
            # A batch is all or nothing: every step of one batch appears the same number of times.
            for batch in range(BATCHES_PER_WRITER):
                copies = {per_step[step] for step in range(batch * BATCH, (batch + 1) * BATCH)}
                assert len(copies) == 1, f"batch {batch} half-written: {copies}"
