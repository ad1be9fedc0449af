"""Concurrent writers to one run lose nothing (PostgreSQL: real row locks between real connections)."""

import threading
import time

import pytest
from django.conf import settings
from django.db import connection

from accounts.models import Role, User
from accounts.tests.factories import MembershipFactory
from experiments import services
from experiments.models import LatestMetric, Metric, Param, Run
from experiments.tests.factories import ExperimentFactory, RunFactory
from mlplatform.errors import NotFound

ON_SQLITE = settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        ON_SQLITE,
        reason="needs PostgreSQL: SQLite serialises every writer on one file lock, so there is no race to test",
    ),
]

WRITERS = 8
BATCHES = 5
POINTS = 100


def test_eight_concurrent_writers_lose_nothing(transactional_db):
    editor = MembershipFactory(role=Role.EDITOR).user
    run = RunFactory(experiment=ExperimentFactory(team=editor.memberships.get().team))
    barrier = threading.Barrier(WRITERS)
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            user = User.objects.get(pk=editor.pk)
            target = Run.objects.get(pk=run.pk)
            barrier.wait(timeout=30)
            for batch in range(BATCHES):
                base = writer * 10_000 + batch * POINTS
                services.log_batch(
                    user=user,
                    run=target,
                    metrics=[
                        {"key": "loss", "value": float(base + i), "step": base + i, "timestamp": base + i}
                        for i in range(POINTS)
                    ],
                    params=[{"key": "shared", "value": "same"}, {"key": f"writer{writer}", "value": str(writer)}],
                    tags=[{"key": "last_writer", "value": str(writer)}],
                )
        except BaseException as exc:  # reported below; a thread's exception is otherwise lost
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    assert Metric.objects.filter(run=run).count() == WRITERS * BATCHES * POINTS
    # Every batch got its own sequence number and wrote all its points under it.
    per_seq = Metric.objects.filter(run=run).values_list("seq", flat=True)
    counts: dict[int, int] = {}
    for seq in per_seq:
        counts[seq] = counts.get(seq, 0) + 1
    assert sorted(counts) == list(range(2, 2 + WRITERS * BATCHES))
    assert set(counts.values()) == {POINTS}
    assert Run.objects.get(pk=run.pk).last_seq == 1 + WRITERS * BATCHES
    top = (WRITERS - 1) * 10_000 + (BATCHES - 1) * POINTS + POINTS - 1
    latest = LatestMetric.objects.get(run=run, key="loss")
    assert (latest.step, latest.value) == (top, float(top))
    assert Param.objects.filter(run=run).count() == 1 + WRITERS


@pytest.mark.parametrize("points", [1, 100])  # the one-statement path and the COPY path
def test_a_writer_racing_a_hard_delete_leaves_no_orphan_points(transactional_db, points):
    """History has no database foreign key: the hard delete's run lock is what keeps points from outliving it."""
    admin = MembershipFactory(role=Role.OWNER).user
    run = RunFactory(experiment=ExperimentFactory(team=admin.memberships.get().team))
    locked = threading.Event()
    outcome: list[BaseException | None] = []
    real_lock = services._lock_runs

    def slow_lock(runs):
        real_lock(runs)
        locked.set()
        time.sleep(0.5)  # the writer reaches the run lock meanwhile and waits

    def write() -> None:
        try:
            locked.wait(timeout=30)
            metrics = [{"key": "loss", "value": 1.0, "step": i, "timestamp": 1} for i in range(points)]
            services.log_batch(user=User.objects.get(pk=admin.pk), run=Run.objects.get(pk=run.pk), metrics=metrics)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)
        finally:
            connection.close()

    writer = threading.Thread(target=write)
    writer.start()
    original = services._lock_runs
    services._lock_runs = slow_lock
    try:
        services.run_hard_delete(user=admin, run=run)
    finally:
        services._lock_runs = original
    writer.join(timeout=60)
    assert len(outcome) == 1 and isinstance(outcome[0], NotFound), outcome
    assert not Metric.objects.filter(run_id=run.pk).exists()
    assert not LatestMetric.objects.filter(run_id=run.pk).exists()
