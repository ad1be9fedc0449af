from datetime import timedelta

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.tests.factories import UserFactory
from registry.models import Alert, AlertRule, Deployment, DeploymentEvent, DeploymentStatus, WebhookDelivery
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
    assert "is retired; only a live or failed one can be rolled back; skipped" in response.content.decode()
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


def _change_form_data(response) -> dict:
    """The POST body that re-submits an admin change page unchanged (main form + every inline formset)."""
    data: dict = {}

    def put(form) -> None:
        for name, field in form.fields.items():
            value = form.initial.get(name, field.initial)
            if hasattr(value, "pk"):
                value = value.pk
            if isinstance(value, bool):
                if value:
                    data[form.add_prefix(name)] = "on"
                continue
            if value is not None:
                data[form.add_prefix(name)] = field.prepare_value(value) if name != "id" else value

    put(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for name, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{name}"] = value
        for form in formset.initial_forms:
            put(form)
    return data


def _webhook_add_body(team, **overrides) -> dict:
    body = {
        "team": team.pk,
        "name": "ops",
        "url": "https://hooks.example.com/x",
        "event_types": '["deployment.changed"]',
        "is_active": "on",
        "deliveries-TOTAL_FORMS": 0,
        "deliveries-INITIAL_FORMS": 0,
        "deliveries-MIN_NUM_FORMS": 0,
        "deliveries-MAX_NUM_FORMS": 1000,
    }
    return {**body, **overrides}


def test_webhook_added_in_admin_gets_a_secret_shown_once_and_is_audited(superuser_client, team):
    from registry.models import Webhook

    response = superuser_client.post(reverse("admin:registry_webhook_add"), _webhook_add_body(team), follow=True)
    assert response.status_code == 200
    hook = Webhook.objects.get()
    assert hook.secret.startswith("whsec_") and len(hook.secret) > 30  # never the blank default
    assert hook.event_types == ["deployment.changed"]
    assert hook.secret in response.content.decode()  # shown once, in the success message
    page = superuser_client.get(reverse("admin:registry_webhook_change", args=[hook.pk]))
    assert hook.secret not in page.content.decode()
    assert AuditEvent.objects.filter(action="webhook.create", object_id=str(hook.pk)).exists()


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"url": "ftp://files.example.com/x"}, "absolute http(s) URL"),
        ({"event_types": '["nope"]'}, "Unknown event type"),
        ({"event_types": '"deployment.changed"'}, "non-empty list"),
        ({"event_types": "[]"}, "This field is required"),
    ],
)
def test_webhook_admin_form_validates_like_the_api(superuser_client, team, overrides, message):
    from registry.models import Webhook

    response = superuser_client.post(reverse("admin:registry_webhook_add"), _webhook_add_body(team, **overrides))
    assert response.status_code == 200  # the form again, with the error
    assert message in response.content.decode()
    assert not Webhook.objects.exists()


def test_webhook_admin_needs_team_admin_role(client, team):
    from django.contrib.auth.models import Permission

    from registry.models import Webhook

    staff = UserFactory(is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="registry"))
    client.force_login(staff)
    response = client.post(reverse("admin:registry_webhook_add"), _webhook_add_body(team))
    assert "Your role does not allow" in response.content.decode()
    assert not Webhook.objects.exists()


def test_webhook_change_and_delete_in_admin_go_through_the_services(superuser_client, world):
    hook = world["hook"]
    url = reverse("admin:registry_webhook_change", args=[hook.pk])
    data = _change_form_data(superuser_client.get(url))
    assert "team" not in data  # fixed once created
    data["url"] = "https://new.example.com/hook"
    assert superuser_client.post(url, data).status_code == 302
    hook.refresh_from_db()
    assert hook.url == "https://new.example.com/hook"
    assert hook.secret == "whsec_test-secret"  # unchanged by an edit
    assert AuditEvent.objects.filter(action="webhook.update").exists()
    superuser_client.post(reverse("admin:registry_webhook_delete", args=[hook.pk]), {"post": "yes"})
    assert AuditEvent.objects.filter(action="webhook.delete").exists()


@pytest.mark.parametrize("name", ["registeredmodel", "environment", "webhook"])
def test_team_is_read_only_once_created(superuser_client, world, name):
    from django.apps import apps

    obj = apps.get_model("registry", name).objects.first()
    page = superuser_client.get(reverse(f"admin:registry_{name}_change", args=[obj.pk]))
    assert 'name="team"' not in page.content.decode()
    assert 'name="team"' in superuser_client.get(reverse(f"admin:registry_{name}_add")).content.decode()


@pytest.mark.parametrize(
    "name",
    [
        "modelversion",
        "alias",
        "stagetransition",
        "deployment",
        "deploymentevent",
        "monitoringmetric",
        "alert",
        "webhookdelivery",
    ],
)
def test_rows_only_services_create_have_no_add_form(superuser_client, name):
    assert superuser_client.get(reverse(f"admin:registry_{name}_add")).status_code == 403


def test_saving_a_deployment_in_admin_does_not_rewrite_it(superuser_client, world, monkeypatch):
    current = world["current"]
    url = reverse("admin:registry_deployment_change", args=[current.pk])
    data = _change_form_data(superuser_client.get(url))
    data["alert_rules-0-threshold"] = 123.0

    def refuse(*args, **kwargs):
        raise AssertionError("the deployment row must not be re-saved from the admin")

    monkeypatch.setattr(Deployment, "save", refuse)
    assert superuser_client.post(url, data).status_code == 302
    assert current.alert_rules.get().threshold == 123.0  # the inline rules are still editable


def test_rollback_action_on_a_failed_deployment(superuser_client, world):
    from registry import services

    current = world["current"]
    services.deployment_set_status(user=UserFactory(is_superuser=True), deployment=current, status="failed")
    response = superuser_client.post(
        reverse("admin:registry_deployment_changelist"),
        {"action": "rollback", "_selected_action": [current.pk]},
        follow=True,
    )
    assert "rolled back" in response.content.decode()
    live = Deployment.objects.get(status="live")
    assert (live.version_id, live.origin) == (world["old"].version_id, "rollback")


@pytest.mark.parametrize("which", ["version", "model"])
def test_admin_refuses_to_delete_a_deployed_version_or_model_and_says_why(superuser_client, world, which):
    version = world["old"].version  # its only deployment is retired: history, not activity
    obj, name = (version, "modelversion") if which == "version" else (version.model, "registeredmodel")
    delete_url = reverse(f"admin:registry_{name}_delete", args=[obj.pk])
    page = superuser_client.get(delete_url).content.decode()
    assert "has been deployed" in page and "deployment history" in page
    response = superuser_client.post(delete_url, {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert type(obj).objects.filter(pk=obj.pk).exists()
    assert Deployment.objects.filter(pk=world["old"].pk).exists()


def test_admin_deletes_a_never_deployed_version_through_the_service(superuser_client, model):
    version = ModelVersionFactory(model=model)
    response = superuser_client.post(
        reverse("admin:registry_modelversion_delete", args=[version.pk]), {"post": "yes"}, follow=True
    )
    assert response.status_code == 200
    assert not type(version).objects.filter(pk=version.pk).exists()
    assert AuditEvent.objects.filter(action="registry.version.delete").exists()


def test_editing_or_deleting_alert_rules_in_admin_resolves_their_alerts(superuser_client, world):
    rule = AlertRule.objects.get()
    Alert.objects.create(rule=rule, deployment=world["current"], value=500.0)
    change = reverse("admin:registry_alertrule_change", args=[rule.pk])
    form = {"metric": rule.metric, "comparison": rule.comparison, "threshold": rule.threshold, "window_seconds": 60}
    assert superuser_client.post(change, form, follow=True).status_code == 200  # is_enabled unticked
    assert Alert.objects.get().state == "resolved"
    assert DeploymentEvent.objects.get(kind="alert_resolved").details["alert"]["reason"] == "rule disabled"
    Alert.objects.create(rule=rule, deployment=world["current"], value=500.0)
    delete = reverse("admin:registry_alertrule_delete", args=[rule.pk])
    assert superuser_client.post(delete, {"post": "yes"}, follow=True).status_code == 200
    assert not AlertRule.objects.exists()
    assert DeploymentEvent.objects.filter(kind="alert_resolved").count() == 2
    assert AuditEvent.objects.filter(action="deployment.alert_rule.delete").exists()
