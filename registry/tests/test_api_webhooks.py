import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from registry import webhooks
from registry.models import Webhook, WebhookDelivery
from registry.tests.factories import WebhookFactory

pytestmark = pytest.mark.django_db


def url(name, **kwargs):
    return reverse(name, kwargs={"version": "v1", **kwargs})


def test_create_shows_secret_once(client_for, team_admin, viewer, team):
    response = client_for(team_admin).post(
        url("registry-webhook-list"),
        {"team": team.pk, "name": "ops", "url": "https://hooks.example.com/x", "event_types": ["deployment.changed"]},
        format="json",
    )
    assert response.status_code == 201
    secret = response.json()["secret"]
    assert secret.startswith("whsec_")
    assert Webhook.objects.get().secret == secret
    detail = client_for(viewer).get(url("registry-webhook-detail", webhook_id=response.json()["id"])).json()
    assert "secret" not in detail
    assert "secret" not in client_for(viewer).get(url("registry-webhook-list")).json()["results"][0]
    assert AuditEvent.objects.filter(action="webhook.create").exists()


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "url": "https://h/x", "event_types": ["nope"]},
        {"name": "x", "url": "javascript:alert(1)", "event_types": ["deployment.changed"]},
        {"name": "x", "url": "https://h/x", "event_types": []},
        {"name": "x", "url": "https://h/x"},
        {"url": "https://h/x", "event_types": ["deployment.changed"]},
    ],
)
def test_create_bad_input(client_for, team_admin, team, body):
    response = client_for(team_admin).post(url("registry-webhook-list"), {"team": team.pk, **body}, format="json")
    assert response.status_code == 400
    assert not Webhook.objects.exists()


def test_editor_cannot_create(client_for, editor, team):
    response = client_for(editor).post(
        url("registry-webhook-list"),
        {"team": team.pk, "name": "x", "url": "https://h/x", "event_types": ["deployment.changed"]},
        format="json",
    )
    assert response.status_code == 403
    assert not Webhook.objects.exists()


def test_update_and_delete(client_for, team_admin, team):
    hook = WebhookFactory(team=team)
    client = client_for(team_admin)
    detail = url("registry-webhook-detail", webhook_id=hook.pk)
    response = client.patch(detail, {"is_active": False, "event_types": ["monitoring.alert"]}, format="json")
    assert response.status_code == 200
    assert (response.json()["is_active"], response.json()["event_types"]) == (False, ["monitoring.alert"])
    assert client.patch(detail, {"url": "nope"}, format="json").status_code == 400
    assert client.delete(detail).status_code == 204
    assert not Webhook.objects.exists()


def test_send_test_delivery_and_list_attempts(client_for, team_admin, team, receiver):
    hook = WebhookFactory(team=team, url=receiver.url)
    client = client_for(team_admin)
    response = client.post(url("registry-webhook-test", webhook_id=hook.pk))
    assert response.status_code == 202
    assert (response.json()["status"], response.json()["event_type"]) == ("pending", "webhook.test")
    webhooks.deliver(response.json()["id"])  # the on-commit hand-off does not run inside a test transaction
    assert receiver.requests[0].json["type"] == "webhook.test"
    deliveries = client.get(url("registry-webhook-deliveries", webhook_id=hook.pk), {"status": "succeeded"}).json()
    assert [(d["attempt"], d["status"], d["status_code"]) for d in deliveries["results"]] == [(1, "succeeded", 200)]
    assert client.get(url("registry-webhook-deliveries", webhook_id=hook.pk), {"status": "x"}).status_code == 400


def test_foreign_webhook_is_404(client_for, team_admin, other_team):
    hook = WebhookFactory(team=other_team)
    response = client_for(team_admin).post(url("registry-webhook-test", webhook_id=hook.pk))
    assert response.status_code == 404
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_hanging_receiver_does_not_slow_the_api(client_for, team_admin, team, model, receiver, settings):
    """Deploy through the API while every receiver hangs: the answer comes back at once, delivery later."""
    import threading
    import time

    from registry.tests.factories import EnvironmentFactory, ModelVersionFactory

    settings.WEBHOOK_TIMEOUT_SECONDS = 30
    version = ModelVersionFactory(model=model)
    environment = EnvironmentFactory(team=team, name="staging")
    hook = WebhookFactory(team=team, url=receiver.url, event_types=["deployment.changed"])
    receiver.secret = hook.secret
    receiver.gate = threading.Event()  # the receiver holds every request until released
    client = client_for(team_admin)
    started = time.monotonic()
    response = client.post(
        url("registry-deployment-list"),
        {"model": model.pk, "version": version.version, "environment": environment.pk},
        format="json",
    )
    elapsed = time.monotonic() - started
    assert response.status_code == 201
    assert receiver.arrived.wait(10), "the background delivery never reached the receiver"
    assert elapsed < 2, f"the API waited {elapsed:.1f}s for the webhook receiver"
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "sending"  # still in flight after the API has answered
    receiver.gate.set()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and WebhookDelivery.objects.get().status == "sending":
        time.sleep(0.05)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.status_code) == ("succeeded", 200)
    assert receiver.requests[0].verified is True
    assert receiver.requests[0].json["data"]["action"] == "deploy"


def test_link_local_urls_are_400_on_create_and_update(client_for, team_admin, team):
    client = client_for(team_admin)
    metadata = "http://169.254.169.254/latest/meta-data/"
    body = {"team": team.pk, "name": "x", "url": metadata, "event_types": ["deployment.changed"]}
    response = client.post(url("registry-webhook-list"), body, format="json")
    assert response.status_code == 400
    assert "link-local" in response.json()["error"]["message"]
    hook = WebhookFactory(team=team)
    detail = url("registry-webhook-detail", webhook_id=hook.pk)
    response = client.patch(detail, {"url": "http://[fe80::a9fe:a9fe]/x"}, format="json")
    assert response.status_code == 400 and "link-local" in response.json()["error"]["message"]
    hook.refresh_from_db()
    assert hook.url == "http://127.0.0.1:9/hook"
    assert Webhook.objects.count() == 1
