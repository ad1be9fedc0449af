"""Registry pages: models, versions, deployments, monitoring data and the rollback flow."""

from __future__ import annotations

import json
import re

import pytest

from registry import services
from registry.models import Alias, Deployment, DeploymentOrigin, DeploymentStatus, StageTransition
from registry.tests.factories import (
    AlertRuleFactory,
    DeploymentFactory,
    EnvironmentFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
)

pytestmark = pytest.mark.django_db


def json_block(response, element_id: str) -> dict:
    pattern = rf'<script id="{element_id}" type="application/json">(.*?)</script>'
    return json.loads(re.search(pattern, response.content.decode(), re.S).group(1))


@pytest.fixture
def versions(model):
    """Two versions of ``model``."""
    return [ModelVersionFactory(model=model), ModelVersionFactory(model=model)]


@pytest.fixture
def rolled_forward(team_admin, versions, production):
    """v1 then v2 deployed to production: v2 live, v1 retired (so a rollback is possible)."""
    services.deploy(user=team_admin, version=versions[0], environment=production)
    return services.deploy(user=team_admin, version=versions[1], environment=production)


# Models ----------------------------------------------------------------------------------------


def test_model_list_shows_own_team_models_only(client, viewer, model, other_team):
    RegisteredModelFactory(team=other_team, name="secret-model")
    client.force_login(viewer)
    response = client.get("/models/")
    assert response.status_code == 200
    assert [m.name for m in response.context["models"]] == ["fraud"]
    assert b"secret-model" not in response.content


def test_model_list_search(client, viewer, model, team):
    RegisteredModelFactory(team=team, name="churn")
    client.force_login(viewer)
    assert [m.name for m in client.get("/models/", {"q": "chu"}).context["models"]] == ["churn"]


def test_model_list_empty_state(client, viewer):
    client.force_login(viewer)
    assert b"No registered models yet" in client.get("/models/").content


def test_model_detail_shows_versions_aliases_and_stage_history(client, viewer, editor, model, versions):
    services.alias_set(user=editor, model=model, alias="champion", version=versions[1])
    services.model_version_transition_stage(user=editor, version=versions[0], stage="Staging", comment="ok")
    client.force_login(viewer)
    response = client.get(f"/models/{model.pk}/")
    assert response.status_code == 200
    assert [v.version for v in response.context["versions"]] == [2, 1]
    assert b"@champion" in response.content
    assert [t.to_stage for t in response.context["history"]] == ["Staging"]
    assert Alias.objects.count() == 1 and StageTransition.objects.count() == 1


def test_model_detail_for_an_outsider_is_a_404(client, outsider, model):
    client.force_login(outsider)
    response = client.get(f"/models/{model.pk}/")
    assert response.status_code == 404
    assert b"Registered model not found." in response.content


def test_version_detail_links_its_source_run(client, viewer, model, run):
    version = ModelVersionFactory(model=model, run=run)
    client.force_login(viewer)
    response = client.get(f"/models/{model.pk}/versions/{version.version}/")
    assert response.status_code == 200
    assert f'href="/runs/{run.run_uuid}/"'.encode() in response.content


def test_version_detail_lists_its_deployments(client, viewer, model, rolled_forward):
    client.force_login(viewer)
    response = client.get(f"/models/{model.pk}/versions/2/")
    assert [d.pk for d in response.context["deployments"]] == [rolled_forward.pk]


def test_unknown_version_is_a_404(client, viewer, model):
    client.force_login(viewer)
    assert client.get(f"/models/{model.pk}/versions/9/").status_code == 404


def test_version_of_another_team_is_a_404(client, outsider, model, versions):
    client.force_login(outsider)
    assert client.get(f"/models/{model.pk}/versions/1/").status_code == 404


# Deployments -----------------------------------------------------------------------------------


def test_deployment_list_shows_what_is_live_per_environment(client, viewer, staging, rolled_forward):
    client.force_login(viewer)
    response = client.get("/deployments/")
    assert response.status_code == 200
    by_env = {item["environment"].name: item["live"] for item in response.context["environments"]}
    assert by_env["staging"] == []
    assert [d.pk for d in by_env["production"]] == [rolled_forward.pk]
    assert len(response.context["recent"]) == 2


def test_deployment_list_hides_other_teams(client, viewer, other_team):
    DeploymentFactory(
        environment=EnvironmentFactory(team=other_team),
        version=ModelVersionFactory(model=RegisteredModelFactory(team=other_team)),
    )
    client.force_login(viewer)
    response = client.get("/deployments/")
    assert response.context["environments"] == []
    assert b"No environments yet" in response.content


def test_deployment_detail_shows_events_alerts_and_monitoring(client, viewer, editor, rolled_forward):
    AlertRuleFactory(deployment=rolled_forward, metric="latency_ms", comparison="gt", threshold=100, window_seconds=60)
    services.monitoring_ingest(
        user=editor,
        deployment=rolled_forward,
        metrics=[{"key": "latency_ms", "value": 250.0, "timestamp": 1_700_000_000_000 + i} for i in range(3)],
    )
    client.force_login(viewer)
    response = client.get(f"/deployments/{rolled_forward.pk}/")
    assert response.status_code == 200
    data = json_block(response, "deployment-chart-data")
    assert data["series"]["latency_ms"][-1] == [1_700_000_000_002, 1_700_000_000_002, 250.0]
    assert data["ws_path"] == f"/ws/deployments/{rolled_forward.pk}/"
    assert len(response.context["alerts"]) == 1
    assert response.context["events"][0].seq > response.context["events"][-1].seq


def test_viewer_sees_no_rollback_button(client, viewer, rolled_forward):
    client.force_login(viewer)
    response = client.get(f"/deployments/{rolled_forward.pk}/")
    assert response.context["can_rollback"] is False
    assert b"rollback-button" not in response.content


def test_admin_sees_the_rollback_button(client, team_admin, rolled_forward):
    client.force_login(team_admin)
    assert b'id="rollback-button"' in client.get(f"/deployments/{rolled_forward.pk}/").content


def test_deployment_of_another_team_is_a_404(client, outsider, rolled_forward):
    client.force_login(outsider)
    assert client.get(f"/deployments/{rolled_forward.pk}/").status_code == 404


# Rollback --------------------------------------------------------------------------------------


def test_rollback_asks_for_confirmation_first(client, team_admin, rolled_forward):
    client.force_login(team_admin)
    response = client.get(f"/deployments/{rolled_forward.pk}/rollback/")
    assert response.status_code == 200
    assert b"Yes, roll back" in response.content
    assert Deployment.objects.get(pk=rolled_forward.pk).status == DeploymentStatus.LIVE


def test_rollback_puts_the_previous_version_back_live(client, team_admin, rolled_forward, production):
    client.force_login(team_admin)
    response = client.post(f"/deployments/{rolled_forward.pk}/rollback/", {"comment": "bad latency"})
    restored = Deployment.objects.get(status=DeploymentStatus.LIVE, environment=production)
    assert response.status_code == 302
    assert response["Location"] == f"/deployments/{restored.pk}/"
    assert restored.version.version == 1
    assert restored.origin == DeploymentOrigin.ROLLBACK
    assert Deployment.objects.get(pk=rolled_forward.pk).status == DeploymentStatus.RETIRED
    assert b"Rolled production back" in client.get(response["Location"]).content


@pytest.mark.parametrize("persona", ["viewer", "editor"])
def test_rollback_below_admin_is_the_403_page(client, request, persona, rolled_forward):
    client.force_login(request.getfixturevalue(persona))
    for response in (
        client.get(f"/deployments/{rolled_forward.pk}/rollback/"),
        client.post(f"/deployments/{rolled_forward.pk}/rollback/"),
    ):
        assert response.status_code == 403
        assert b"<h1>Not allowed</h1>" in response.content
    assert Deployment.objects.get(pk=rolled_forward.pk).status == DeploymentStatus.LIVE


def test_rollback_by_an_outsider_is_a_404(client, outsider, rolled_forward):
    client.force_login(outsider)
    assert client.post(f"/deployments/{rolled_forward.pk}/rollback/").status_code == 404
    assert Deployment.objects.get(pk=rolled_forward.pk).status == DeploymentStatus.LIVE


def test_rollback_without_a_previous_version_explains_and_changes_nothing(client, team_admin, versions, production):
    only = services.deploy(user=team_admin, version=versions[0], environment=production)
    client.force_login(team_admin)
    response = client.post(f"/deployments/{only.pk}/rollback/", follow=True)
    assert response.status_code == 200
    assert b"nothing to roll back to" in response.content
    assert list(Deployment.objects.values_list("pk", "status")) == [(only.pk, DeploymentStatus.LIVE)]


def test_rollback_with_an_overlong_comment_is_a_400(client, team_admin, rolled_forward):
    client.force_login(team_admin)
    response = client.post(f"/deployments/{rolled_forward.pk}/rollback/", {"comment": "x" * 2001})
    assert response.status_code == 400
    assert Deployment.objects.filter(status=DeploymentStatus.LIVE).get().pk == rolled_forward.pk


def test_rollback_of_an_unknown_deployment_is_a_404(client, team_admin):
    client.force_login(team_admin)
    assert client.post("/deployments/999999/rollback/").status_code == 404
