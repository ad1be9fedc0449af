"""``seed_demo``: the demo data the screenshots and first-time visitors see."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from accounts.models import Membership, Role, Team
from experiments.models import Experiment, Metric, Run
from registry.models import Deployment, MonitoringMetric, RegisteredModel


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
