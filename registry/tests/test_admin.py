from datetime import timedelta

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.tests.factories import UserFactory
from registry.models import Deployment, DeploymentStatus, WebhookDelivery
from registry.tests.factories import (
    AlertRuleFactory,
    DeploymentFactory,
    EnvironmentFactory,
    ModelVersionFactory,
    WebhookFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def world(model, receiver):
    environment = EnvironmentFactory(team=model.team)
    v1 = ModelVersionFactory(model=model)
    old = DeploymentFactory(
        version=v1, environment=environment, status=DeploymentStatus.RETIRED, went_live_at=timezone.now()
    )
    current = DeploymentFactory(version=ModelVersionFactory(model=model), environment=environment)
    AlertRuleFactory(deployment=current)
    hook = WebhookFactory(team=model.team, url=receiver.url)
    WebhookDelivery.objects.create(webhook=hook, event_type="webhook.test", payload={})
    return {"old": old, "current": current, "hook": hook}


REGISTRY_MODELS = [m for m in admin.site._registry if m._meta.app_label == "registry"]


@pytest.mark.parametrize("model_class", REGISTRY_MODELS, ids=lambda m: m.__name__)
def test_changelist_and_change_pages_render(superuser_client, world, model_class):
    opts = model_class._meta
    assert superuser_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")).status_code == 200
    obj = model_class.objects.first()
    if obj is not None:
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        assert superuser_client.get(url).status_code == 200


def test_every_registry_model_is_registered():
    from django.apps import apps

    assert set(apps.get_app_config("registry").get_models()) == set(REGISTRY_MODELS)


def test_webhook_secret_is_not_shown(superuser_client, world):
    page = superuser_client.get(reverse("admin:registry_webhook_change", args=[world["hook"].pk]))
    assert world["hook"].secret not in page.content.decode()


def test_rollback_action(superuser_client, world):
    response = superuser_client.post(
        reverse("admin:registry_deployment_changelist"),
        {"action": "rollback", "_selected_action": [world["current"].pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "rolled back" in response.content.decode()
    live = Deployment.objects.get(status="live")
    assert (live.version_id, live.origin) == (world["old"].version_id, "rollback")
    assert AuditEvent.objects.filter(action="deployment.rollback").exists()


def test_rollback_action_reports_problems(superuser_client, world):
    response = superuser_client.post(
        reverse("admin:registry_deployment_changelist"),
        {"action": "rollback", "_selected_action": [world["old"].pk]},
        follow=True,
    )
    assert "is not live; skipped" in response.content.decode()
    superuser_client.post(
        reverse("admin:registry_deployment_changelist"),
        {"action": "rollback", "_selected_action": [world["current"].pk]},
    )
    world["old"].refresh_from_db()
    restored = Deployment.objects.get(status="live")
    Deployment.objects.exclude(pk=restored.pk).delete()  # no history left to roll back to
    response = superuser_client.post(
        reverse("admin:registry_deployment_changelist"),
        {"action": "rollback", "_selected_action": [restored.pk]},
        follow=True,
    )
    assert "nothing to roll back to" in response.content.decode()


def test_send_test_delivery_action(superuser_client, world):
    superuser_client.post(
        reverse("admin:registry_webhook_changelist"),
        {"action": "send_test_delivery", "_selected_action": [world["hook"].pk]},
    )
    assert WebhookDelivery.objects.filter(event_type="webhook.test").count() == 2


def test_send_test_delivery_action_needs_admin_role(client, world):
    staff = UserFactory(is_staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="registry"))
    client.force_login(staff)
    response = client.post(
        reverse("admin:registry_webhook_changelist"),
        {"action": "send_test_delivery", "_selected_action": [world["hook"].pk]},
        follow=True,
    )
    assert "Your role does not allow" in response.content.decode()
    assert WebhookDelivery.objects.count() == 1


def test_deliver_now_action(superuser_client, world, django_capture_on_commit_callbacks):
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.update(scheduled_at=timezone.now() + timedelta(hours=1))
    with django_capture_on_commit_callbacks() as callbacks:
        response = superuser_client.post(
            reverse("admin:registry_webhookdelivery_changelist"),
            {"action": "deliver_now", "_selected_action": [delivery.pk]},
            follow=True,
        )
    assert "1 pending deliveries queued" in response.content.decode()
    assert len(callbacks) == 1  # the hand-off to the background pool, after commit
    delivery.refresh_from_db()
    assert delivery.scheduled_at <= timezone.now()
