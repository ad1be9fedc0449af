"""``/mlflow/registered-models/...`` and ``/mlflow/model-versions/...`` through the Django test client."""

from __future__ import annotations

import io

import pytest

from accounts.models import AuditEvent
from experiments import artifacts
from experiments import services as tracking
from experiments.mlflow.services import logged_model_create
from registry import services
from registry.models import Alias, ModelVersion, ModelVersionTag, RegisteredModel, RegisteredModelTag
from registry.tests.factories import DeploymentFactory
from tests.mlflow_client.helpers import call, error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def model(editor, team):
    """A registered model in ``team``."""
    return services.registered_model_create(user=editor, team=team, name="clf")


@pytest.fixture
def version(editor, model):
    """Version 1 of ``model`` from a plain source."""
    return services.model_version_create(user=editor, model=model, source="s3://bucket/model")


def test_create_goes_to_the_personal_team_and_renders(client_for, editor) -> None:
    body = {"name": "new", "description": "d", "tags": [{"key": "k", "value": "v"}]}
    rendered = call(client_for(editor), "POST", "registered-models/create", body).json()["registered_model"]
    assert rendered["name"] == "new" and rendered["description"] == "d"
    assert rendered["tags"] == [{"key": "k", "value": "v"}] and rendered["latest_versions"] == []
    assert RegisteredModel.objects.get(name="new").team.is_personal


def test_create_with_a_name_taken_in_a_team_is_resource_already_exists(client_for, editor, model) -> None:
    response = call(client_for(editor), "POST", "registered-models/create", {"name": "clf"})
    assert error_of(response) == (400, "RESOURCE_ALREADY_EXISTS")
    assert RegisteredModel.objects.filter(name="clf").count() == 1


def test_create_in_the_x_team_team(client_for, editor, team) -> None:
    response = call(client_for(editor), "POST", "registered-models/create", {"name": "m"}, HTTP_X_TEAM=team.name)
    assert response.status_code == 200
    assert RegisteredModel.objects.get(name="m").team == team


def test_viewer_cannot_create_in_the_team(client_for, viewer, team) -> None:
    response = call(client_for(viewer), "POST", "registered-models/create", {"name": "m"}, HTTP_X_TEAM=team.slug)
    assert error_of(response) == (403, "PERMISSION_DENIED")
    assert not RegisteredModel.objects.exists()


def test_get_rename_update_and_delete(client_for, editor, team_admin, model) -> None:
    client = client_for(editor)
    assert call(client, "GET", "registered-models/get", {"name": "clf"}).json()["registered_model"]["name"] == "clf"
    renamed = call(client, "POST", "registered-models/rename", {"name": "clf", "new_name": "clf2"}).json()
    assert renamed["registered_model"]["name"] == "clf2"
    updated = call(client, "PATCH", "registered-models/update", {"name": "clf2", "description": "x"}).json()
    assert updated["registered_model"]["description"] == "x"
    assert error_of(call(client, "DELETE", "registered-models/delete", {"name": "clf2"})) == (403, "PERMISSION_DENIED")
    assert call(client_for(team_admin), "DELETE", "registered-models/delete", {"name": "clf2"}).status_code == 200
    assert not RegisteredModel.objects.exists()


def test_unknown_and_other_teams_models_are_not_found(client_for, outsider, model) -> None:
    client = client_for(outsider)
    assert error_of(call(client, "GET", "registered-models/get", {"name": "nope"})) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert error_of(call(client, "GET", "registered-models/get", {"name": "clf"})) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_model_tags(client_for, editor, model) -> None:
    client = client_for(editor)
    call(client, "POST", "registered-models/set-tag", {"name": "clf", "key": "k", "value": "v"})
    assert RegisteredModelTag.objects.get(model=model).value == "v"
    call(client, "DELETE", "registered-models/delete-tag", {"name": "clf", "key": "k"})
    assert not RegisteredModelTag.objects.filter(model=model).exists()
    response = call(client, "DELETE", "registered-models/delete-tag", {"name": "clf", "key": "k"})
    assert error_of(response) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_search_drops_the_clients_prompt_clause(client_for, editor, model) -> None:
    params = {"filter": "name LIKE 'c%' AND tag.`mlflow.prompt.is_prompt` != 'true'"}
    found = call(client_for(editor), "GET", "registered-models/search", params).json()["registered_models"]
    assert [m["name"] for m in found] == ["clf"]
    only_clause = {"filter": "tags.`mlflow.prompt.is_prompt` != 'true'"}
    assert (
        len(call(client_for(editor), "GET", "registered-models/search", only_clause).json()["registered_models"]) == 1
    )


def test_search_pages_and_includes_latest_versions(client_for, editor, team, version) -> None:
    services.registered_model_create(user=editor, team=team, name="zzz")
    client = client_for(editor)
    first = call(client, "GET", "registered-models/search", {"max_results": 1}).json()
    assert [m["name"] for m in first["registered_models"]] == ["clf"]
    assert [v["version"] for v in first["registered_models"][0]["latest_versions"]] == ["1"]
    second = call(client, "GET", "registered-models/search", {"max_results": 1, "page_token": first["next_page_token"]})
    assert [m["name"] for m in second.json()["registered_models"]] == ["zzz"]


@pytest.mark.parametrize("params", [{"max_results": 1001}, {"filter": "color = 'red'"}, {"order_by": "bogus"}])
def test_search_bad_input(client_for, editor, params) -> None:
    response = call(client_for(editor), "GET", "registered-models/search", params)
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")


def test_create_version_from_a_run_artifact(client_for, editor, team, model) -> None:
    experiment = tracking.experiment_create(user=editor, team=team, name="exp")
    run = tracking.run_create(user=editor, experiment=experiment)
    artifacts.artifact_write(user=editor, run=run, path="model/MLmodel", stream=io.BytesIO(b"x"))
    body = {"name": "clf", "source": f"{run.artifact_uri}/model", "run_id": run.run_uuid}
    rendered = call(client_for(editor), "POST", "model-versions/create", body).json()["model_version"]
    assert rendered["version"] == "1" and rendered["run_id"] == run.run_uuid and rendered["status"] == "READY"
    assert ModelVersion.objects.get(model=model).run == run


def test_create_version_with_a_missing_run_path_writes_nothing(client_for, editor, team, model) -> None:
    experiment = tracking.experiment_create(user=editor, team=team, name="exp")
    run = tracking.run_create(user=editor, experiment=experiment)
    body = {"name": "clf", "source": f"runs:/{run.run_uuid}/model", "run_id": run.run_uuid}
    response = call(client_for(editor), "POST", "model-versions/create", body)
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    assert not ModelVersion.objects.exists()


def test_create_version_from_an_unknown_logged_model_is_not_found(client_for, editor, model) -> None:
    body = {"name": "clf", "source": f"models:/m-{'0' * 32}"}
    response = call(client_for(editor), "POST", "model-versions/create", body)
    assert error_of(response) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert not ModelVersion.objects.exists()


def test_version_from_a_logged_model_names_it_in_model_id(client_for, editor, team, model, version) -> None:
    """MLflow 3 clients send ``model_id`` with a ``models:/m-...`` source, and MLflow's version carries it back."""
    experiment = tracking.experiment_create(user=editor, team=team, name="exp")
    logged = logged_model_create(user=editor, experiment=experiment, name="model")
    client = client_for(editor)
    body = {"name": "clf", "source": f"models:/{logged.model_id}", "model_id": logged.model_id}
    rendered = call(client, "POST", "model-versions/create", body).json()["model_version"]
    assert rendered["model_id"] == logged.model_id
    got = call(client, "GET", "model-versions/get", {"name": "clf", "version": rendered["version"]}).json()
    assert got["model_version"]["model_id"] == logged.model_id
    plain = call(client, "GET", "model-versions/get", {"name": "clf", "version": "1"}).json()["model_version"]
    assert "model_id" not in plain


def test_version_get_update_tags_download_uri_and_delete(client_for, editor, team_admin, version) -> None:
    client = client_for(editor)
    key = {"name": "clf", "version": "1"}
    assert call(client, "GET", "model-versions/get", key).json()["model_version"]["source"] == "s3://bucket/model"
    updated = call(client, "PATCH", "model-versions/update", {**key, "description": "d"}).json()["model_version"]
    assert updated["description"] == "d"
    call(client, "POST", "model-versions/set-tag", {**key, "key": "k", "value": "v"})
    assert ModelVersionTag.objects.get(version=version).value == "v"
    call(client, "DELETE", "model-versions/delete-tag", {**key, "key": "k"})
    assert not ModelVersionTag.objects.filter(version=version).exists()
    assert call(client, "GET", "model-versions/get-download-uri", key).json() == {"artifact_uri": "s3://bucket/model"}
    assert error_of(call(client, "DELETE", "model-versions/delete", key)) == (403, "PERMISSION_DENIED")
    assert call(client_for(team_admin), "DELETE", "model-versions/delete", key).status_code == 200
    assert not ModelVersion.objects.filter(pk=version.pk).exists()


@pytest.mark.parametrize(
    ("version_value", "expected"),
    [
        ("abc", (400, "INVALID_PARAMETER_VALUE")),
        ("0", (400, "INVALID_PARAMETER_VALUE")),
        ("99", (404, "RESOURCE_DOES_NOT_EXIST")),
    ],
)
def test_bad_or_unknown_version(client_for, editor, version, version_value, expected) -> None:
    response = call(client_for(editor), "GET", "model-versions/get", {"name": "clf", "version": version_value})
    assert error_of(response) == expected


def test_transition_stage_and_latest_versions(client_for, editor, model, version) -> None:
    services.model_version_create(user=editor, model=model, source="s3://bucket/model2")
    client = client_for(editor)
    body = {"name": "clf", "version": "1", "stage": "staging", "archive_existing_versions": False}
    assert (
        call(client, "POST", "model-versions/transition-stage", body).json()["model_version"]["current_stage"]
        == "Staging"
    )
    latest = call(client, "POST", "registered-models/get-latest-versions", {"name": "clf"}).json()["model_versions"]
    assert {(v["version"], v["current_stage"]) for v in latest} == {("1", "Staging"), ("2", "None")}
    only = call(client, "GET", "registered-models/get-latest-versions", {"name": "clf", "stages": ["Staging"]})
    assert [v["version"] for v in only.json()["model_versions"]] == ["1"]


def test_transition_to_a_bad_stage_changes_nothing(client_for, editor, version) -> None:
    body = {"name": "clf", "version": "1", "stage": "Heaven"}
    assert error_of(call(client_for(editor), "POST", "model-versions/transition-stage", body)) == (
        400,
        "INVALID_PARAMETER_VALUE",
    )
    version.refresh_from_db()
    assert version.current_stage == "None"


def test_aliases(client_for, editor, version) -> None:
    client = client_for(editor)
    assert (
        call(
            client, "POST", "registered-models/alias", {"name": "clf", "alias": "champion", "version": "1"}
        ).status_code
        == 200
    )
    got = call(client, "GET", "registered-models/alias", {"name": "clf", "alias": "champion"}).json()["model_version"]
    assert got["version"] == "1" and got["aliases"] == ["champion"]
    rendered = call(client, "GET", "registered-models/get", {"name": "clf"}).json()["registered_model"]
    assert rendered["aliases"] == [{"alias": "champion", "version": "1"}]
    assert call(client, "DELETE", "registered-models/alias", {"name": "clf", "alias": "champion"}).status_code == 200
    assert not Alias.objects.exists()


def test_alias_to_an_unknown_version_is_not_found(client_for, editor, version) -> None:
    body = {"name": "clf", "alias": "champion", "version": "7"}
    assert error_of(call(client_for(editor), "POST", "registered-models/alias", body)) == (
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    assert not Alias.objects.exists()


def test_search_model_versions_by_name(client_for, editor, version) -> None:
    found = call(client_for(editor), "GET", "model-versions/search", {"filter": "name='clf'"}).json()["model_versions"]
    assert [(v["name"], v["version"]) for v in found] == [("clf", "1")]


def test_facade_registry_writes_are_audited_with_the_request(client_for, editor, team_admin, version) -> None:
    """Create, rename, stage, alias and delete through the façade leave the same audit events as the native API."""
    client = client_for(team_admin)
    steps = [
        ("POST", "registered-models/create", {"name": "audited"}),
        ("POST", "model-versions/transition-stage", {"name": "clf", "version": "1", "stage": "Staging"}),
        ("POST", "registered-models/alias", {"name": "clf", "alias": "champion", "version": "1"}),
        ("DELETE", "registered-models/alias", {"name": "clf", "alias": "champion"}),
        ("POST", "registered-models/rename", {"name": "clf", "new_name": "clf-2"}),
        ("DELETE", "model-versions/delete", {"name": "clf-2", "version": "1"}),
        ("DELETE", "registered-models/delete", {"name": "audited"}),
    ]
    for method, path, body in steps:
        assert call(client, method, path, body, HTTP_USER_AGENT="mlflow-python-client/3").status_code == 200, path
    events = AuditEvent.objects.filter(actor=team_admin, action__startswith="registry.")
    assert set(events.values_list("action", flat=True)) == {
        "registry.model.create",
        "registry.version.stage",
        "registry.alias.set",
        "registry.alias.delete",
        "registry.model.rename",
        "registry.version.delete",
        "registry.model.delete",
    }
    assert set(events.values_list("user_agent", flat=True)) == {"mlflow-python-client/3"}


def test_deleting_a_deployed_version_or_model_is_refused_in_mlflow_shape(client_for, team_admin, version) -> None:
    DeploymentFactory(version=version, status="retired")
    client = client_for(team_admin)
    response = call(client, "DELETE", "model-versions/delete", {"name": "clf", "version": "1"})
    assert error_of(response) == (400, "RESOURCE_ALREADY_EXISTS")  # the façade's mapping of a conflict
    assert "has been deployed" in response.json()["message"]
    response = call(client, "DELETE", "registered-models/delete", {"name": "clf"})
    assert error_of(response)[0] == 400 and "deployment history" in response.json()["message"]
    assert ModelVersion.objects.filter(pk=version.pk).exists()
