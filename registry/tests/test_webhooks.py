import ipaddress
import json
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from mlplatform.errors import InvalidInput
from registry import services, webhooks
from registry.models import WebhookDelivery
from registry.tests.factories import WebhookFactory
from registry.tests.receiver import start_receiver
from registry.webhooks import sign, verify_signature

SECRET = "whsec_test-secret"


def test_signature_round_trip():
    body = b'{"a": 1}'
    assert verify_signature(SECRET, body, sign(SECRET, body))


def test_signature_rejects_other_body_secret_or_garbage():
    header = sign(SECRET, b"one")
    assert not verify_signature(SECRET, b"two", header)
    assert not verify_signature("whsec_other", b"one", header)
    assert not verify_signature(SECRET, b"one", "garbage")
    assert not verify_signature(SECRET, b"one", "t=abc,v1=00")


def test_signature_rejects_old_timestamps():
    header = sign(SECRET, b"x", timestamp=1_000)
    assert not verify_signature(SECRET, b"x", header, now=1_000 + 301)
    assert verify_signature(SECRET, b"x", header, now=1_000 + 299)


def test_json_safe_replaces_non_finite():
    data = {"a": [float("nan"), float("inf"), -float("inf"), 1.5], "b": (2,)}
    assert webhooks.json_safe(data) == {"a": ["NaN", "Infinity", "-Infinity", 1.5], "b": [2]}


def test_retry_delay_is_exponential(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 2
    assert [webhooks.retry_delay(n) for n in (1, 2, 3, 4)] == [2, 4, 8, 16]


@pytest.mark.django_db
def test_delivery_is_signed_and_recorded(receiver, team):
    hook = WebhookFactory(team=team, url=receiver.url)
    delivery = webhooks.enqueue_event(team_id=team.pk, event_type="deployment.changed", data={"x": 1})[0]
    webhooks.deliver(delivery.pk)
    got = receiver.requests[0]
    assert verify_signature(hook.secret, got.body, got.headers["X-Mlplatform-Signature"])
    assert got.headers["X-Mlplatform-Event"] == "deployment.changed"
    assert got.headers["X-Mlplatform-Delivery"] == str(delivery.event_id)
    assert got.json["data"] == {"x": 1}
    assert got.json["type"] == "deployment.changed"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.status_code, delivery.error) == ("succeeded", 200, "")
    assert delivery.duration_ms is not None and delivery.finished_at is not None


@pytest.mark.django_db
def test_failed_attempt_schedules_next_with_backoff(receiver, team, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    WebhookFactory(team=team, url=receiver.url)
    receiver.statuses = [500]
    first = webhooks.enqueue_event(team_id=team.pk, event_type="deployment.changed", data={})[0]
    before = timezone.now()
    webhooks.deliver(first.pk)
    first.refresh_from_db()
    assert (first.status, first.status_code) == ("failed", 500)
    assert "receiver says no" in first.error
    retry = WebhookDelivery.objects.get(attempt=2)
    assert retry.status == "pending"
    assert retry.event_id == first.event_id
    assert before + timedelta(seconds=29) < retry.scheduled_at < before + timedelta(seconds=40)


@pytest.mark.django_db
def test_retries_until_success_each_attempt_recorded(receiver, team, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0
    WebhookFactory(team=team, url=receiver.url)
    receiver.statuses = [500, 503]
    webhooks.enqueue_event(team_id=team.pk, event_type="deployment.changed", data={})
    for _ in range(3):
        assert len(webhooks.deliver_due()) == 1
    attempts = list(WebhookDelivery.objects.order_by("attempt").values_list("attempt", "status", "status_code"))
    assert attempts == [(1, "failed", 500), (2, "failed", 503), (3, "succeeded", 200)]
    assert len({r.headers["X-Mlplatform-Delivery"] for r in receiver.requests}) == 1


@pytest.mark.django_db
def test_gives_up_after_max_attempts(team, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    WebhookFactory(team=team, url="http://127.0.0.1:9/closed")  # nothing listens on the discard port
    webhooks.enqueue_event(team_id=team.pk, event_type="deployment.changed", data={})
    webhooks.deliver_due()
    webhooks.deliver_due()
    assert webhooks.deliver_due() == []
    rows = list(WebhookDelivery.objects.order_by("attempt"))
    assert [(r.attempt, r.status, r.status_code) for r in rows] == [(1, "failed", None), (2, "failed", None)]
    assert "Error" in rows[0].error


@pytest.mark.django_db
def test_not_due_and_already_claimed_are_skipped(team):
    hook = WebhookFactory(team=team)
    later = WebhookDelivery.objects.create(
        webhook=hook, event_type="x", payload={}, scheduled_at=timezone.now() + timedelta(hours=1)
    )
    sending = WebhookDelivery.objects.create(webhook=hook, event_type="x", payload={}, status="sending")
    assert webhooks.deliver(later.pk) is None
    assert webhooks.deliver(sending.pk) is None


@pytest.mark.django_db
def test_stale_sending_rows_are_requeued(receiver, team):
    hook = WebhookFactory(team=team, url=receiver.url)
    stuck = WebhookDelivery.objects.create(
        webhook=hook, event_type="x", payload={}, status="sending", started_at=timezone.now() - timedelta(hours=1)
    )
    webhooks.deliver_due()
    stuck.refresh_from_db()
    assert stuck.status == "succeeded"


@pytest.mark.django_db
def test_inactive_or_unsubscribed_webhooks_get_nothing(team):
    WebhookFactory(team=team, is_active=False)
    WebhookFactory(team=team, event_types=["monitoring.alert"])
    assert webhooks.enqueue_event(team_id=team.pk, event_type="deployment.changed", data={}) == []


@pytest.mark.django_db
def test_deliver_webhooks_command(receiver, team, capsys):
    WebhookFactory(team=team, url=receiver.url)
    webhooks.enqueue_event(team_id=team.pk, event_type="deployment.changed", data={})
    call_command("deliver_webhooks")
    assert "1 deliveries attempted, 1 succeeded, 0 failed" in capsys.readouterr().out
    assert WebhookDelivery.objects.get().status == "succeeded"


@pytest.mark.django_db
def test_webhook_service_create_validates(team_admin, team):
    from mlplatform.errors import InvalidInput

    for bad in [
        {"url": "ftp://x", "event_types": ["deployment.changed"]},
        {"url": "http://x", "event_types": []},
        {"url": "http://x", "event_types": ["webhook.test"]},
        {"url": "http://x", "event_types": "deployment.changed"},
    ]:
        with pytest.raises(InvalidInput):
            services.webhook_create(user=team_admin, team=team, name="h", **bad)


@pytest.mark.django_db
def test_webhook_service_update(team_admin, team):
    from mlplatform.errors import InvalidInput

    hook = services.webhook_create(
        user=team_admin, team=team, name="h", url="http://x/hook", event_types=["deployment.changed"]
    )
    assert hook.secret.startswith("whsec_")
    services.webhook_update(
        user=team_admin, webhook=hook, name="n", url="https://y/", event_types=["monitoring.alert"], is_active=False
    )
    hook.refresh_from_db()
    assert (hook.name, hook.url, hook.event_types, hook.is_active) == ("n", "https://y/", ["monitoring.alert"], False)
    with pytest.raises(InvalidInput):
        services.webhook_update(user=team_admin, webhook=hook, is_active="no")


@pytest.mark.django_db(transaction=True)
def test_delivery_runs_in_background_and_never_blocks_the_caller(receiver, team, team_admin, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.05
    hook = WebhookFactory(team=team, url=receiver.url)
    receiver.gate = __import__("threading").Event()  # the receiver hangs until released
    receiver.statuses = [500]
    delivery = services.webhook_send_test(user=team_admin, webhook=hook)  # commits, then hands off
    assert receiver.arrived.wait(10), "the background worker never reached the receiver"
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == "sending"  # the caller is back already
    receiver.gate.set()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if WebhookDelivery.objects.filter(status="succeeded").exists():
            break
        time.sleep(0.05)
    attempts = list(WebhookDelivery.objects.order_by("attempt").values_list("attempt", "status"))
    assert attempts == [(1, "failed"), (2, "succeeded")]  # retried in-process after the back-off
    assert json.loads(receiver.requests[-1].body)["type"] == "webhook.test"


@pytest.mark.django_db
def test_receiver_verifies_the_signature_and_refuses_a_wrong_secret(receiver, team, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    hook = WebhookFactory(team=team, url=receiver.url)
    receiver.secret = hook.secret  # the receiver checks with its own code (receiver.signature_ok)
    first = webhooks.enqueue_event(team_id=team.pk, event_type="deployment.changed", data={"n": 1})[0]
    webhooks.deliver(first.pk)
    assert receiver.requests[-1].verified is True
    first.refresh_from_db()
    assert (first.status, first.status_code) == ("succeeded", 200)

    receiver.secret = "whsec_rotated-on-the-receiver-only"
    second = webhooks.enqueue_event(team_id=team.pk, event_type="deployment.changed", data={"n": 2})[0]
    webhooks.deliver(second.pk)
    assert receiver.requests[-1].verified is False
    second.refresh_from_db()
    assert (second.status, second.status_code) == ("failed", 401)  # the refusal is recorded and retried
    assert WebhookDelivery.objects.filter(event_id=second.event_id, attempt=2, status="pending").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failed_attempt_and_is_not_followed(receiver, team, settings, status):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    elsewhere = start_receiver()
    try:
        WebhookFactory(team=team, url=receiver.url)
        receiver.statuses, receiver.location = [status], elsewhere.url
        first = webhooks.enqueue_event(team_id=team.pk, event_type="deployment.changed", data={"x": 1})[0]
        webhooks.deliver(first.pk)
        first.refresh_from_db()
        assert (first.status, first.status_code) == ("failed", status)
        assert "redirects are not followed" in first.error and elsewhere.url in first.error
        assert elsewhere.requests == []  # neither a GET without the body nor a re-POST
        retry = WebhookDelivery.objects.get(attempt=2)
        assert (retry.status, retry.event_id) == ("pending", first.event_id)
    finally:
        elsewhere.stop()


def _fake_dns(monkeypatch, table):
    """Resolve host names through ``table`` (name -> list of addresses, or a callable returning one)."""
    real = webhooks._resolve

    def resolve(host, port):
        if host in table:
            answer = table[host]
            return [ipaddress.ip_address(a) for a in (answer() if callable(answer) else answer)]
        return real(host, port)

    monkeypatch.setattr(webhooks, "_resolve", resolve)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/hook",
        "http://[::ffff:169.254.169.254]/hook",
        "https://metadata.test/computeMetadata/v1/",
    ],
)
def test_link_local_hosts_are_refused_when_saved(team_admin, team, monkeypatch, url):
    _fake_dns(monkeypatch, {"metadata.test": ["169.254.169.254"]})
    with pytest.raises(InvalidInput, match="link-local"):
        services.webhook_create(user=team_admin, team=team, name="h", url=url, event_types=["deployment.changed"])
    hook = WebhookFactory(team=team)
    with pytest.raises(InvalidInput, match="link-local"):
        services.webhook_update(user=team_admin, webhook=hook, url=url)


@pytest.mark.django_db
def test_a_host_that_moved_to_link_local_is_refused_at_delivery(receiver, team, monkeypatch, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    port = receiver.url.split(":")[2].split("/")[0]
    hook = WebhookFactory(team=team, url=f"http://hooks.test:{port}/hook")
    _fake_dns(monkeypatch, {"hooks.test": ["127.0.0.1"]})
    delivery = webhooks.enqueue_event(team_id=team.pk, event_type="deployment.changed", data={})[0]
    webhooks.deliver(delivery.pk)
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == "succeeded"  # the checked address is used
    assert receiver.requests[0].headers["Host"] == f"hooks.test:{port}"

    _fake_dns(monkeypatch, {"hooks.test": ["169.254.169.254"]})  # DNS changed since the webhook was saved
    delivery = webhooks.enqueue_event(team_id=team.pk, event_type="deployment.changed", data={})[0]
    webhooks.deliver(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.status_code) == ("failed", None)
    assert "link-local" in delivery.error
    assert WebhookDelivery.objects.filter(webhook=hook, attempt=2, status="pending").exists()  # retried
    assert len(receiver.requests) == 1


@pytest.mark.django_db
def test_the_connection_goes_only_to_a_checked_address(receiver, team, monkeypatch):
    """DNS rebinding: the pre-check sees a fine address, the connection's own lookup a link-local one."""
    port = receiver.url.split(":")[2].split("/")[0]
    WebhookFactory(team=team, url=f"http://rebind.test:{port}/hook")
    answers = iter([["127.0.0.1"], ["169.254.169.254"]])
    _fake_dns(monkeypatch, {"rebind.test": lambda: next(answers)})
    delivery = webhooks.enqueue_event(team_id=team.pk, event_type="deployment.changed", data={})[0]
    webhooks.deliver(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.error.startswith("BlockedAddress")
    assert "link-local" in delivery.error
    assert receiver.requests == []


@pytest.mark.django_db
def test_private_hosts_are_refused_only_when_the_setting_is_off(receiver, team, team_admin, settings):
    services.webhook_create(user=team_admin, team=team, name="ok", url=receiver.url, event_types=["monitoring.alert"])
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    for url in (receiver.url, "http://10.1.2.3/hook", "http://[::1]/hook", "http://100.64.0.1/x"):
        with pytest.raises(InvalidInput, match="WEBHOOK_ALLOW_PRIVATE_HOSTS"):
            services.webhook_create(user=team_admin, team=team, name="h", url=url, event_types=["monitoring.alert"])
    public = "http://8.8.8.8/x"
    services.webhook_create(user=team_admin, team=team, name="public", url=public, event_types=["monitoring.alert"])
    WebhookFactory(team=team, url=receiver.url)  # saved while private hosts were allowed
    delivery = webhooks.enqueue_event(team_id=team.pk, event_type="deployment.changed", data={})[0]
    webhooks.deliver(delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.status_code) == ("failed", None)
    assert "WEBHOOK_ALLOW_PRIVATE_HOSTS" in delivery.error
    assert receiver.requests == []
