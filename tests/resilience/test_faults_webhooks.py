"""A webhook receiver that hangs, or answers 500, does not slow the API of a real daphne.

Injected: a local receiver that holds every request open (30 s) or answers 500, subscribed to every event.
Each API call that fires an event (``POST /webhooks/<id>/test/``) and an ordinary write are timed while the
receiver misbehaves; deliveries run in the server's background pool, so every call must stay fast.
"""

from __future__ import annotations

import statistics
import threading
import time

import pytest
import requests
from django.utils import timezone

from registry import services as registry_services
from registry.models import DeliveryStatus, Webhook, WebhookDelivery
from registry.tests.receiver import start_receiver

pytestmark = [pytest.mark.server]

CALLS = 20
MAX_SECONDS = 1.5


@pytest.fixture
def receiver():
    """The misbehaving receiver (released at teardown)."""
    receiver = start_receiver()
    yield receiver
    receiver.stop()


def drain_and_remove(webhook_id: int, timeout: float = 30.0) -> None:
    """Wait until the server has no attempt of this webhook in flight or due, then delete the webhook.

    The daphne process keeps delivering (and retrying) after the test body ends; its writes must not race
    with the test database flush at teardown (a TRUNCATE meeting a delivery transaction deadlocks).
    Deleting the webhook removes its pending retries, so later timers in the server find nothing to claim.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = WebhookDelivery.objects.filter(webhook_id=webhook_id, status=DeliveryStatus.SENDING).exists()
        due = WebhookDelivery.objects.filter(
            webhook_id=webhook_id, status=DeliveryStatus.PENDING, scheduled_at__lte=timezone.now()
        ).exists()
        if not busy and not due:
            break
        time.sleep(0.1)
    Webhook.objects.filter(pk=webhook_id).delete()


def timed_calls(server_url: str, workspace, webhook_id: int) -> list[float]:
    session = requests.Session()
    session.headers.update(workspace.headers(admin=True))
    durations = []
    for step in range(CALLS):
        started = time.monotonic()
        fired = session.post(f"{server_url}/api/v1/webhooks/{webhook_id}/test/", json={}, timeout=30)
        logged = session.post(
            f"{server_url}/api/v1/runs/{workspace.run.run_uuid}/log-batch/",
            json={"metrics": [{"key": "m", "value": step, "step": step}]},
            timeout=30,
        )
        durations.append(time.monotonic() - started)
        assert fired.status_code in {200, 201, 202}, fired.text[:300]
        assert logged.status_code == 200, logged.text[:300]
    return durations


@pytest.mark.parametrize("behaviour", ["hangs", "answers 500"])
def test_misbehaving_receiver_does_not_slow_the_api(daphne_server, live_workspace, receiver, behaviour: str) -> None:
    if behaviour == "hangs":
        receiver.gate = threading.Event()
    else:
        receiver.statuses = [500] * (CALLS * 10)
    webhook = registry_services.webhook_create(
        user=live_workspace.admin,
        team=live_workspace.team,
        name="slow receiver",
        url=receiver.url,
        event_types=["model_version.created"],
    )
    try:
        durations = timed_calls(daphne_server.url, live_workspace, webhook.pk)
        assert receiver.arrived.wait(10), "no delivery reached the receiver"
    finally:
        receiver.stop()
        drain_and_remove(webhook.pk)
    assert max(durations) < MAX_SECONDS, (
        f"slowest call pair {max(durations):.2f}s, median {statistics.median(durations):.2f}s"
    )
