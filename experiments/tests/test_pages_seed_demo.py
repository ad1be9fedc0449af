"""``seed_demo``: the demo data the screenshots and first-time visitors see."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Membership, Role, Team
from experiments.models import Experiment, Metric, Run
from registry.models import Alert, Deployment, DeploymentEvent, ModelVersion, MonitoringMetric, RegisteredModel


@pytest.mark.django_db
def test_seed_demo_creates_the_demo_once(client):
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    team = Team.objects.get(name="demo")
    assert Membership.objects.get(team=team, user__username="demo").role == Role.OWNER
    assert Experiment.objects.filter(team=team).count() == 3
    assert Run.objects.filter(team=team, status="RUNNING").count() == 1
    assert Metric.objects.filter(run__team=team, key="loss").count() > 5000
    assert RegisteredModel.objects.filter(team=team).count() == 2
    assert Deployment.objects.filter(team=team, status="live").count() == 2
    assert MonitoringMetric.objects.exists()
    assert "Log in as 'demo'" in out.getvalue()
    assert client.login(username="demo", password="demo-password")

    again = io.StringIO()
    call_command("seed_demo", stdout=again)
    assert "already exists" in again.getvalue()
    assert Experiment.objects.filter(team=team).count() == 3


@pytest.mark.django_db
def test_seed_demo_dates_the_registry_story_like_a_real_one():
    """Versions days apart, production's version live for hours, the alert raised and resolved within the hour."""
    call_command("seed_demo", stdout=io.StringIO())
    now = timezone.now()
    created = list(ModelVersion.objects.order_by("version").values_list("created_at", flat=True))
    assert created == sorted(created)
    assert now - created[0] > timedelta(days=2)
    assert created[1] - created[0] > timedelta(hours=12)
    production = Deployment.objects.get(status="live", environment__name="production")
    assert timedelta(hours=3) < now - production.went_live_at < timedelta(hours=5)
    alert = Alert.objects.get()
    assert alert.resolved_at is not None
    assert timedelta(minutes=1) < alert.resolved_at - alert.raised_at < timedelta(minutes=30)
    assert now - alert.raised_at < timedelta(hours=1)
    stamps = set(DeploymentEvent.objects.filter(deployment=production).values_list("created_at", flat=True))
    assert len(stamps) >= 3
