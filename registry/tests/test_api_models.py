import pytest
from django.urls import reverse

from accounts.models import AuditEvent, Team
from registry.models import (
    Alias,
    Deployment,
    DeploymentEvent,
    ModelVersion,
    RegisteredModel,
    RegisteredModelTag,
    StageTransition,
)
from registry.tests.factories import DeploymentFactory, ModelVersionFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db


def url(name, **kwargs):
    return reverse(name, kwargs={"version": "v1", **kwargs})


def error(response):
    return response.json()["error"]


def test_create_model(client_for, editor, team):
    response = client_for(editor).post(
        url("registry-model-list"),
        {"team": team.pk, "name": "fraud", "description": "d", "tags": [{"key": "owner", "value": "ml"}]},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["team"], body["tags"], body["created_by"]) == (
        "fraud",
        team.pk,
        {"owner": "ml"},
        editor.username,
    )
    assert RegisteredModel.objects.filter(team=team, name="fraud").exists()
    audit = AuditEvent.objects.get(action="registry.model.create")
    assert (audit.actor, audit.ip) == (editor, "127.0.0.1")  # the request reaches the audit log


def test_create_model_defaults_to_personal_team(client_for, editor):
    response = client_for(editor).post(url("registry-model-list"), {"name": "mine"}, format="json")
    assert response.status_code == 201
    assert Team.objects.get(pk=response.json()["team"]).is_personal


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": ["x"]}, "name"),
        ({"name": "m", "team": "abc"}, "team"),
        ({"name": "m", "tags": "x"}, "tags"),
        ({"name": "m", "tags": [{"key": "k"}]}, "tags"),
        ({"name": "x" * 300}, "name"),
    ],
)
def test_create_model_bad_input(client_for, editor, team, body, field):
    body = {"team": team.pk, **body} if "team" not in body else body
    response = client_for(editor).post(url("registry-model-list"), body, format="json")
    assert response.status_code == 400
    assert field in error(response)["details"]
    assert not RegisteredModel.objects.exists()


def test_create_model_malformed_json(client_for, editor):
    response = client_for(editor).post(url("registry-model-list"), "{nope", content_type="application/json")
    assert response.status_code == 400
    assert error(response)["code"] == "parse_error"
    assert not RegisteredModel.objects.exists()


def test_create_model_body_not_an_object(client_for, editor):
    response = client_for(editor).post(url("registry-model-list"), [1, 2], format="json")
    assert response.status_code == 400
    assert not RegisteredModel.objects.exists()


def test_create_in_unknown_team(client_for, editor):
    response = client_for(editor).post(url("registry-model-list"), {"team": 999999, "name": "m"}, format="json")
    assert response.status_code == 404


def test_create_in_other_team_is_404(client_for, editor, other_team):
    response = client_for(editor).post(url("registry-model-list"), {"team": other_team.pk, "name": "m"}, format="json")
    assert response.status_code == 404
    assert not RegisteredModel.objects.exists()


def test_create_duplicate_is_409(client_for, editor, team, model):
    response = client_for(editor).post(url("registry-model-list"), {"team": team.pk, "name": "fraud"}, format="json")
    assert response.status_code == 409
    assert error(response)["code"] == "conflict"


def test_list_models_only_visible(client_for, viewer, model, other_team):
    RegisteredModelFactory(team=other_team)
    response = client_for(viewer).get(url("registry-model-list"))
    assert response.status_code == 200
    assert [m["name"] for m in response.json()["results"]] == ["fraud"]


def test_list_models_filters(client_for, viewer, team, model):
    RegisteredModelFactory(team=team, name="churn")
    client = client_for(viewer)
    assert [m["name"] for m in client.get(url("registry-model-list"), {"search": "chu"}).json()["results"]] == ["churn"]
    assert client.get(url("registry-model-list"), {"team": "x"}).status_code == 400


def test_model_detail_patch_delete(client_for, editor, team_admin, model):
    client = client_for(editor)
    detail = url("registry-model-detail", model_id=model.pk)
    assert client.get(detail).json()["name"] == "fraud"
    response = client.patch(detail, {"name": "fraud-2", "description": "new"}, format="json")
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["description"]) == ("fraud-2", "new")
    assert client.delete(detail).status_code == 403
    assert client_for(team_admin).delete(detail).status_code == 204
    assert not RegisteredModel.objects.exists()


def test_patch_rename_conflict_changes_nothing(client_for, editor, team, model):
    RegisteredModelFactory(team=team, name="taken")
    response = client_for(editor).patch(
        url("registry-model-detail", model_id=model.pk), {"name": "taken", "description": "x"}, format="json"
    )
    assert response.status_code == 409
    model.refresh_from_db()
    assert (model.name, model.description) == ("fraud", "")


def test_unknown_and_foreign_models_are_404(client_for, viewer, other_team):
    foreign = RegisteredModelFactory(team=other_team)
    client = client_for(viewer)
    assert client.get(url("registry-model-detail", model_id=999999)).status_code == 404
    response = client.get(url("registry-model-detail", model_id=foreign.pk))
    assert response.status_code == 404
    assert error(response)["message"] == "Registered model not found."


def test_model_tags(client_for, editor, model):
    client = client_for(editor)
    response = client.post(url("registry-model-tags", model_id=model.pk), {"key": "a/b", "value": "1"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"key": "a/b", "value": "1"}
    assert client.delete(url("registry-model-tag-detail", model_id=model.pk, key="a/b")).status_code == 204
    assert not RegisteredModelTag.objects.exists()
    assert client.delete(url("registry-model-tag-detail", model_id=model.pk, key="a/b")).status_code == 404


def test_model_tag_missing_value(client_for, editor, model):
    response = client_for(editor).post(url("registry-model-tags", model_id=model.pk), {"key": "a"}, format="json")
    assert response.status_code == 400
    assert not RegisteredModelTag.objects.exists()


def test_register_version_from_run(client_for, editor, model, run):
    response = client_for(editor).post(
        url("registry-version-list", model_id=model.pk),
        {"source": f"runs:/{run.run_uuid}/model", "run_id": run.run_uuid, "tags": [{"key": "k", "value": "v"}]},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["version"], body["run_id"], body["status"], body["current_stage"], body["tags"]) == (
        1,
        run.run_uuid,
        "READY",
        "None",
        {"k": "v"},
    )
    assert ModelVersion.objects.get().run == run


def test_register_version_missing_path_is_400(client_for, editor, model, run):
    response = client_for(editor).post(
        url("registry-version-list", model_id=model.pk), {"source": f"runs:/{run.run_uuid}/nope"}, format="json"
    )
    assert response.status_code == 400
    assert "no artifact" in error(response)["message"]
    assert not ModelVersion.objects.exists()


def test_register_version_unknown_run_is_404(client_for, editor, model):
    response = client_for(editor).post(
        url("registry-version-list", model_id=model.pk), {"source": "runs:/" + "0" * 32 + "/m"}, format="json"
    )
    assert response.status_code == 404
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize("body", [{}, {"source": ""}, {"source": 5, "run_id": "x" * 40}, {"source": "s", "tags": {}}])
def test_register_version_bad_input(client_for, editor, model, body):
    response = client_for(editor).post(url("registry-version-list", model_id=model.pk), body, format="json")
    assert response.status_code == 400
    assert not ModelVersion.objects.exists()


def test_version_list_detail_patch_delete(client_for, editor, team_admin, model):
    ModelVersionFactory(model=model)
    ModelVersionFactory(model=model)
    client = client_for(editor)
    listing = client.get(url("registry-version-list", model_id=model.pk)).json()["results"]
    assert [v["version"] for v in listing] == [2, 1]
    detail = url("registry-version-detail", model_id=model.pk, number=1)
    assert client.get(detail).json()["version"] == 1
    assert client.patch(detail, {"description": "d"}, format="json").json()["description"] == "d"
    assert client.patch(detail, {"description": 5}, format="json").status_code == 200  # DRF coerces numbers
    assert client.patch(detail, {}, format="json").status_code == 400
    assert client.delete(detail).status_code == 403
    assert client_for(team_admin).delete(detail).status_code == 204
    assert client.get(detail).status_code == 404


def test_version_tags(client_for, editor, model):
    ModelVersionFactory(model=model)
    client = client_for(editor)
    tags = url("registry-version-tags", model_id=model.pk, number=1)
    assert client.post(tags, {"key": "k", "value": "v"}, format="json").status_code == 200
    assert client.delete(url("registry-version-tag-detail", model_id=model.pk, number=1, key="k")).status_code == 204


def test_stage_transition_and_history(client_for, editor, model):
    ModelVersionFactory(model=model, current_stage="Production")
    ModelVersionFactory(model=model)
    client = client_for(editor)
    response = client.post(
        url("registry-version-stage", model_id=model.pk, number=2),
        {"stage": "production", "archive_existing_versions": True, "comment": "ship it"},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["current_stage"] == "Production"
    assert ModelVersion.objects.get(version=1).current_stage == "Archived"
    history = client.get(url("registry-version-transitions", model_id=model.pk, number=2)).json()["results"]
    assert [(t["from_stage"], t["to_stage"], t["comment"], t["user"]) for t in history] == [
        ("None", "Production", "ship it", editor.username)
    ]


@pytest.mark.parametrize("body", [{"stage": "prod"}, {}, {"stage": "Staging", "archive_existing_versions": "maybe"}])
def test_stage_bad_input(client_for, editor, model, body):
    ModelVersionFactory(model=model)
    response = client_for(editor).post(url("registry-version-stage", model_id=model.pk, number=1), body, format="json")
    assert response.status_code == 400
    assert not StageTransition.objects.exists()


def test_latest_versions(client_for, viewer, model):
    ModelVersionFactory(model=model, current_stage="Staging")
    ModelVersionFactory(model=model, current_stage="Staging")
    response = client_for(viewer).get(url("registry-model-latest-versions", model_id=model.pk), {"stages": "Staging"})
    assert [v["version"] for v in response.json()] == [2]
    bad = client_for(viewer).get(url("registry-model-latest-versions", model_id=model.pk), {"stages": "nope"})
    assert bad.status_code == 400


def test_aliases(client_for, editor, model):
    ModelVersionFactory(model=model)
    ModelVersionFactory(model=model)
    client = client_for(editor)
    alias = url("registry-alias-detail", model_id=model.pk, alias="champion")
    assert client.put(alias, {"version": 1}, format="json").json()["version"] == 1
    assert client.put(alias, {"version": 2}, format="json").json()["version"] == 2
    assert client.get(alias).json()["version"] == 2
    assert client.get(url("registry-alias-list", model_id=model.pk)).json()[0]["alias"] == "champion"
    assert client.get(url("registry-model-detail", model_id=model.pk)).json()["aliases"] == {"champion": 2}
    assert client.delete(alias).status_code == 204
    assert not Alias.objects.exists()


@pytest.mark.parametrize("body,status", [({"version": 9}, 404), ({"version": "one"}, 400), ({}, 400)])
def test_alias_bad_input(client_for, editor, model, body, status):
    ModelVersionFactory(model=model)
    response = client_for(editor).put(
        url("registry-alias-detail", model_id=model.pk, alias="champion"), body, format="json"
    )
    assert response.status_code == status
    assert not Alias.objects.exists()


def test_model_search(client_for, viewer, team, model):
    RegisteredModelFactory(team=team, name="churn")
    client = client_for(viewer)
    response = client.get(url("registry-model-search"), {"filter": "name LIKE 'fr%'"})
    assert response.status_code == 200
    assert [m["name"] for m in response.json()["results"]] == ["fraud"]
    page = client.get(url("registry-model-search"), {"max_results": 1, "order_by": "name ASC"}).json()
    assert [m["name"] for m in page["results"]] == ["churn"] and page["next_page_token"]
    bad = client.get(url("registry-model-search"), {"filter": "name = "})
    assert bad.status_code == 400
    assert "expected a value" in error(bad)["message"]


def test_version_search(client_for, viewer, model):
    ModelVersionFactory(model=model)
    response = client_for(viewer).get(url("registry-version-search"), {"filter": "name = 'fraud'"})
    assert [(v["model_name"], v["version"]) for v in response.json()["results"]] == [("fraud", 1)]
    assert client_for(viewer).get(url("registry-version-search"), {"max_results": 0}).status_code == 400


def test_deleting_a_deployed_version_or_model_is_409_naming_why(client_for, team_admin, model):
    version = ModelVersionFactory(model=model)
    deployment = DeploymentFactory(version=version, status="retired")
    DeploymentEvent.objects.create(deployment=deployment, seq=1, kind="created", message="who put it there")
    client = client_for(team_admin)
    for target in (
        url("registry-version-detail", model_id=model.pk, number=version.version),
        url("registry-model-detail", model_id=model.pk),
    ):
        response = client.delete(target)
        assert response.status_code == 409
        assert error(response)["code"] == "deployment_history"
        assert "has been deployed" in error(response)["message"]
        assert error(response)["details"]["deployments"] == 1
    assert ModelVersion.objects.filter(pk=version.pk).exists()
    assert Deployment.objects.get(pk=deployment.pk).events.get().message == "who put it there"
