import pytest
from django.urls import reverse

from registry.models import AlertRule, Deployment, Environment, MonitoringMetric
from registry.tests.factories import AlertRuleFactory, DeploymentFactory, ModelVersionFactory

pytestmark = pytest.mark.django_db


def url(name, **kwargs):
    return reverse(name, kwargs={"version": "v1", **kwargs})


def error(response):
    return response.json()["error"]


@pytest.fixture
def versions(model):
    return ModelVersionFactory(model=model), ModelVersionFactory(model=model)


def deploy(client, model, number, environment):
    return client.post(
        url("registry-deployment-list"),
        {"model": model.pk, "version": number, "environment": environment.pk, "endpoint_url": "http://svc/predict"},
        format="json",
    )


def test_environments_crud(client_for, team_admin, viewer, team):
    admin = client_for(team_admin)
    staging = admin.post(url("registry-environment-list"), {"team": team.pk, "name": "staging"}, format="json")
    assert staging.status_code == 201
    prod = admin.post(url("registry-environment-list"), {"team": team.pk, "name": "production"}, format="json")
    assert prod.json()["position"] == 1
    listing = client_for(viewer).get(url("registry-environment-list")).json()
    assert [e["name"] for e in listing] == ["staging", "production"]
    detail = url("registry-environment-detail", environment_id=staging.json()["id"])
    assert client_for(viewer).get(detail).json()["name"] == "staging"
    assert admin.patch(detail, {"description": "pre-prod"}, format="json").json()["description"] == "pre-prod"
    assert client_for(viewer).patch(detail, {"description": "x"}, format="json").status_code == 403
    assert admin.delete(detail).status_code == 204
    assert list(Environment.objects.values_list("name", flat=True)) == ["production"]


@pytest.mark.parametrize("body", [{"name": "x"}, {"team": "t", "name": "x"}, {"name": "x", "position": -1}])
def test_environment_bad_input(client_for, team_admin, team, body):
    body = {"team": team.pk, **body} if "team" in body or body.get("position") is not None else body
    response = client_for(team_admin).post(url("registry-environment-list"), body, format="json")
    assert response.status_code == 400
    assert not Environment.objects.exists()


def test_full_release_flow(client_for, team_admin, viewer, model, versions, staging, production):
    admin = client_for(team_admin)
    first = deploy(admin, model, 1, staging)
    assert first.status_code == 201
    assert (first.json()["status"], first.json()["version"], first.json()["environment_name"]) == ("live", 1, "staging")
    promoted = admin.post(url("registry-deployment-promote", deployment_id=first.json()["id"]), {}, format="json")
    assert promoted.status_code == 201
    assert (promoted.json()["environment_name"], promoted.json()["origin"]) == ("production", "promote")
    second = deploy(admin, model, 2, production)
    assert second.status_code == 201
    rolled = admin.post(url("registry-deployment-rollback", deployment_id=second.json()["id"]), {}, format="json")
    assert rolled.status_code == 201
    assert (rolled.json()["version"], rolled.json()["origin"]) == (1, "rollback")
    live = client_for(viewer).get(url("registry-deployment-list"), {"environment": production.pk, "status": "live"})
    assert [(d["version"], d["created_by"]) for d in live.json()["results"]] == [(1, team_admin.username)]
    events = client_for(viewer).get(url("registry-deployment-events", deployment_id=second.json()["id"])).json()
    assert [(e["seq"], e["kind"], e["to_status"]) for e in events["results"]] == [
        (1, "created", "live"),
        (2, "status", "retired"),
    ]


def test_rollback_without_previous_is_409_with_message(client_for, team_admin, model, versions, production):
    admin = client_for(team_admin)
    only = deploy(admin, model, 1, production).json()
    response = admin.post(url("registry-deployment-rollback", deployment_id=only["id"]), {}, format="json")
    assert response.status_code == 409
    assert error(response)["code"] == "no_previous_version"
    assert "nothing to roll back to" in error(response)["message"]
    assert Deployment.objects.count() == 1


def test_editor_cannot_deploy(client_for, editor, model, versions, staging):
    response = deploy(client_for(editor), model, 1, staging)
    assert response.status_code == 403
    assert not Deployment.objects.exists()


@pytest.mark.parametrize(
    "body,status",
    [
        ({}, 400),
        ({"model": "x", "version": 1, "environment": 1}, 400),
        ({"version": 9}, 404),
        ({"environment": 999999}, 404),
        ({"model": 999999}, 404),
        ({"config": "not-an-object"}, 400),
        ({"endpoint_url": "file:///etc/passwd"}, 400),
    ],
)
def test_deploy_bad_input(client_for, team_admin, model, versions, staging, body, status):
    full = {"model": model.pk, "version": 1, "environment": staging.pk}
    payload = {**full, **body} if body else {}
    response = client_for(team_admin).post(url("registry-deployment-list"), payload, format="json")
    assert response.status_code == status
    assert not Deployment.objects.exists()


def test_deploy_other_teams_model_is_404(client_for, team_admin, other_team, staging):
    foreign = ModelVersionFactory(model__team=other_team)
    response = client_for(team_admin).post(
        url("registry-deployment-list"),
        {"model": foreign.model_id, "version": 1, "environment": staging.pk},
        format="json",
    )
    assert response.status_code == 404
    assert not Deployment.objects.exists()


def test_status_report(client_for, team_admin, model, versions, staging):
    admin = client_for(team_admin)
    pending = admin.post(
        url("registry-deployment-list"),
        {"model": model.pk, "version": 1, "environment": staging.pk, "activate": False},
        format="json",
    ).json()
    assert pending["status"] == "pending"
    status_url = url("registry-deployment-status", deployment_id=pending["id"])
    assert admin.post(status_url, {"status": "sleeping"}, format="json").status_code == 400
    assert admin.post(status_url, {"status": "live"}, format="json").json()["status"] == "live"
    assert admin.post(status_url, {"status": "pending"}, format="json").status_code == 409


def test_metrics_ingest_and_read(client_for, editor, viewer, model, team_admin):
    deployment = DeploymentFactory(version=ModelVersionFactory(model=model))
    AlertRuleFactory(deployment=deployment, metric="latency_ms", threshold=100)
    client = client_for(editor)
    metrics_url = url("registry-deployment-metrics", deployment_id=deployment.pk)
    body = '{"metrics": [{"key": "latency_ms", "value": 250, "timestamp": 1000}, {"key": "drift", "value": NaN}]}'
    response = client.post(metrics_url, body, content_type="application/json")
    assert response.status_code == 201
    assert response.json() == {"seq": 1, "count": 2}
    points = client_for(viewer).get(metrics_url).json()["results"]
    assert [(p["key"], p["value"]) for p in points] == [("latency_ms", 250.0), ("drift", "NaN")]
    only = client_for(viewer).get(metrics_url, {"key": "drift"}).json()["results"]
    assert len(only) == 1
    alerts = client_for(viewer).get(url("registry-alert-list", deployment_id=deployment.pk)).json()["results"]
    assert [(a["metric"], a["state"]) for a in alerts] == [("latency_ms", "firing")]


@pytest.mark.parametrize(
    "body",
    [
        "{}",
        '{"metrics": "x"}',
        '{"metrics": [{"key": "k"}]}',
        '{"metrics": [{"key": "k", "value": "high"}]}',
        "[1, 2]",
        "{broken",
        '{"metrics": [' + ",".join(['{"key": "k", "value": 1}'] * 1001) + "]}",
    ],
)
def test_metrics_bad_input_writes_nothing(client_for, editor, model, body):
    deployment = DeploymentFactory(version=ModelVersionFactory(model=model))
    response = client_for(editor).post(
        url("registry-deployment-metrics", deployment_id=deployment.pk), body, content_type="application/json"
    )
    assert response.status_code == 400
    assert "error" in response.json()
    assert not MonitoringMetric.objects.exists()


def test_metrics_viewer_cannot_post(client_for, viewer, model):
    deployment = DeploymentFactory(version=ModelVersionFactory(model=model))
    response = client_for(viewer).post(
        url("registry-deployment-metrics", deployment_id=deployment.pk),
        {"metrics": [{"key": "k", "value": 1}]},
        format="json",
    )
    assert response.status_code == 403
    assert not MonitoringMetric.objects.exists()


def test_alert_rules_crud(client_for, team_admin, viewer, model):
    deployment = DeploymentFactory(version=ModelVersionFactory(model=model))
    admin = client_for(team_admin)
    rules_url = url("registry-alert-rule-list", deployment_id=deployment.pk)
    created = admin.post(
        rules_url, {"metric": "error_rate", "comparison": "gt", "threshold": 0.05, "window_seconds": 60}, format="json"
    )
    assert created.status_code == 201
    rule_url = url("registry-alert-rule-detail", deployment_id=deployment.pk, rule_id=created.json()["id"])
    assert client_for(viewer).get(rules_url).json()[0]["metric"] == "error_rate"
    assert client_for(viewer).get(rule_url).json()["threshold"] == 0.05
    assert admin.patch(rule_url, {"is_enabled": False}, format="json").json()["is_enabled"] is False
    assert client_for(viewer).delete(rule_url).status_code == 403
    assert admin.delete(rule_url).status_code == 204
    assert not AlertRule.objects.exists()
    assert admin.get(rule_url).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"metric": "m", "comparison": "between", "threshold": 1},
        {"metric": "m", "comparison": "gt", "threshold": "x"},
    ],
)
def test_alert_rule_bad_input(client_for, team_admin, model, body):
    deployment = DeploymentFactory(version=ModelVersionFactory(model=model))
    response = client_for(team_admin).post(
        url("registry-alert-rule-list", deployment_id=deployment.pk), body, format="json"
    )
    assert response.status_code == 400
    assert not AlertRule.objects.exists()


def test_foreign_deployment_is_404(client_for, team_admin, other_team):
    foreign = DeploymentFactory(version=ModelVersionFactory(model__team=other_team))
    client = client_for(team_admin)
    assert client.get(url("registry-deployment-detail", deployment_id=foreign.pk)).status_code == 404
    assert (
        client.post(url("registry-deployment-rollback", deployment_id=foreign.pk), {}, format="json").status_code == 404
    )
    response = client.post(
        url("registry-deployment-metrics", deployment_id=foreign.pk),
        {"metrics": [{"key": "k", "value": 1}]},
        format="json",
    )
    assert response.status_code == 404
    assert not MonitoringMetric.objects.exists()


def test_deployment_list_filters_validate(client_for, viewer):
    assert client_for(viewer).get(url("registry-deployment-list"), {"status": "dancing"}).status_code == 400
    assert client_for(viewer).get(url("registry-deployment-list"), {"model": "x"}).status_code == 400


def test_out_of_range_numbers_are_4xx_not_500(client_for, team_admin, model, versions, staging):
    huge = 10**20
    client = client_for(team_admin)
    assert client.get(url("registry-deployment-detail", deployment_id=huge)).status_code == 404
    assert client.get(url("registry-model-detail", model_id=huge)).status_code == 404
    assert client.get(url("registry-deployment-list"), {"model": huge}).status_code in (200, 400)
    response = client.post(
        url("registry-deployment-list"), {"model": model.pk, "version": huge, "environment": staging.pk}, format="json"
    )
    assert response.status_code in (400, 404)
    assert not Deployment.objects.exists()
