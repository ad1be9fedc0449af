"""Races that only the database can settle: version numbering and one live deployment per environment."""

import threading
import time

import pytest
from django.db import connection, transaction

from mlplatform.errors import Conflict
from registry import services
from registry.models import Deployment, ModelVersion
from registry.tests.factories import ModelVersionFactory

ON_POSTGRES = connection.vendor == "postgresql"


def in_thread(target, results, key):
    def run():
        try:
            results[key] = target()
        except Exception as exc:
            results[key] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True)
def test_concurrent_version_creation_is_unique_and_gap_free(editor, model):
    barrier = threading.Barrier(8)
    results: dict = {}

    def register_five():
        barrier.wait(timeout=10)
        return [services.model_version_create(user=editor, model=model, source="s3://b/m").version for _ in range(5)]

    threads = [in_thread(register_five, results, n) for n in range(8)]
    for thread in threads:
        thread.join(timeout=60)
    errors = [r for r in results.values() if isinstance(r, Exception)]
    assert not errors
    numbers = sorted(n for batch in results.values() for n in batch)
    assert numbers == list(range(1, 41))
    assert sorted(ModelVersion.objects.filter(model=model).values_list("version", flat=True)) == numbers
    model.refresh_from_db()
    assert model.last_version == 40


def wait_for_lock_waiter(timeout: float = 10) -> None:
    """Block until some other backend of this database waits on a lock."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the second promotion never blocked on the first")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("already_live_in_production", [False, True])
@pytest.mark.parametrize("second", ["same promotion", "other version"])
@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite serialises all writers, so promotions cannot overlap there")
def test_concurrent_promotions_one_wins_other_409(
    team_admin, model, staging, production, already_live_in_production, second
):
    v1 = ModelVersionFactory(model=model)
    v2 = ModelVersionFactory(model=model)
    v0 = ModelVersionFactory(model=model)
    if already_live_in_production:
        services.deploy(user=team_admin, version=v0, environment=production)
    in_staging = services.deploy(user=team_admin, version=v1, environment=staging)
    inserted, release = threading.Event(), threading.Event()
    results: dict = {}

    def first():
        with transaction.atomic():
            promoted = services.promote(user=team_admin, deployment=in_staging)
            inserted.set()
            release.wait(timeout=20)  # hold the new live row uncommitted while the second one runs
        return promoted

    def other():
        if second == "same promotion":
            return services.promote(user=team_admin, deployment=in_staging)
        return services.deploy(user=team_admin, version=v2, environment=production)

    winner_thread = in_thread(first, results, "first")
    assert inserted.wait(timeout=20)
    loser_thread = in_thread(other, results, "second")
    wait_for_lock_waiter()
    release.set()
    winner_thread.join(timeout=30)
    loser_thread.join(timeout=30)

    assert isinstance(results["first"], Deployment)
    loser = results["second"]
    assert isinstance(loser, Conflict), loser
    assert loser.status_code == 409
    assert loser.code == "concurrent_deployment"
    assert "went live at the same time" in loser.message
    live = Deployment.objects.filter(model=model, environment=production, status="live")
    assert [d.version_id for d in live] == [v1.pk]
    assert not Deployment.objects.filter(environment=production, version=v2).exists()
