"""``/mlflow/experiments/...`` through the Django test client: team mapping, errors, search."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from experiments import services
from experiments.models import Experiment, ExperimentTag
from tests.mlflow_client.helpers import call, error_of

pytestmark = pytest.mark.django_db


def _create(client, name: str, **extra):
    return call(client, "POST", "experiments/create", {"name": name, **extra.pop("body", {})}, **extra)


def test_create_goes_to_the_personal_team(client_for, editor) -> None:
    response = _create(client_for(editor), "exp", body={"tags": [{"key": "k", "value": "v"}]})
    experiment = Experiment.objects.get(pk=int(response.json()["experiment_id"]))
    assert experiment.team.is_personal and experiment.created_by == editor
    assert experiment.artifact_location == f"mlflow-artifacts:/{experiment.pk}"
    assert dict(experiment.tags.values_list("key", "value")) == {"k": "v"}


def test_create_goes_to_the_x_team_header_team(client_for, editor, team) -> None:
    response = _create(client_for(editor), "exp", HTTP_X_TEAM=team.slug)
    assert Experiment.objects.get(pk=int(response.json()["experiment_id"])).team == team


def test_create_goes_to_the_team_named_by_the_mlplatform_team_tag(client_for, editor, team) -> None:
    response = _create(client_for(editor), "exp", body={"tags": [{"key": "mlplatform.team", "value": team.name}]})
    experiment = Experiment.objects.get(pk=int(response.json()["experiment_id"]))
    assert experiment.team == team
    assert not experiment.tags.filter(key="mlplatform.team").exists()


def test_create_in_a_team_the_caller_is_not_in_is_not_found(client_for, editor, other_team) -> None:
    response = _create(client_for(editor), "exp", HTTP_X_TEAM=other_team.slug)
    assert error_of(response) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert not Experiment.objects.exists()


def test_viewer_cannot_create_in_the_team(client_for, viewer, team) -> None:
    response = _create(client_for(viewer), "exp", HTTP_X_TEAM=team.slug)
    assert error_of(response) == (403, "PERMISSION_DENIED")
    assert not Experiment.objects.filter(team=team).exists()


def test_duplicate_name_is_resource_already_exists(client_for, editor) -> None:
    client = client_for(editor)
    _create(client, "exp")
    response = _create(client, "exp")
    assert error_of(response) == (400, "RESOURCE_ALREADY_EXISTS")
    assert Experiment.objects.filter(name="exp").count() == 1


def test_over_long_name_is_refused(client_for, editor) -> None:
    response = _create(client_for(editor), "x" * 501)
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    assert not Experiment.objects.exists()


def test_get_experiment_zero_creates_default_once(client_for, editor) -> None:
    client = client_for(editor)
    first = call(client, "GET", "experiments/get", {"experiment_id": "0"}).json()["experiment"]
    second = call(client, "GET", "experiments/get", {"experiment_id": "0"}).json()["experiment"]
    assert first["name"] == "Default" and first["experiment_id"] == second["experiment_id"]
    assert Experiment.objects.filter(name="Default").count() == 1


def test_get_renders_mlflow_shape(client_for, editor, team) -> None:
    experiment = services.experiment_create(user=editor, team=team, name="shape", description="notes")
    body = call(client_for(editor), "GET", "experiments/get", {"experiment_id": str(experiment.pk)}).json()
    rendered = body["experiment"]
    assert rendered["experiment_id"] == str(experiment.pk) and rendered["lifecycle_stage"] == "active"
    assert {"key": "mlflow.note.content", "value": "notes"} in rendered["tags"]
    assert isinstance(rendered["creation_time"], int)


@pytest.mark.parametrize("experiment_id", ["999999", "abc"])
def test_get_unknown_is_resource_does_not_exist(client_for, editor, experiment_id) -> None:
    response = call(client_for(editor), "GET", "experiments/get", {"experiment_id": experiment_id})
    assert error_of(response) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_other_teams_experiment_is_not_found(client_for, outsider, editor, team) -> None:
    experiment = services.experiment_create(user=editor, team=team, name="private")
    response = call(client_for(outsider), "GET", "experiments/get", {"experiment_id": str(experiment.pk)})
    assert error_of(response) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_get_by_name_prefers_the_personal_team(client_for, editor, team) -> None:
    services.experiment_create(user=editor, team=team, name="same")
    personal = services.experiment_create(user=editor, name="same")
    body = call(client_for(editor), "GET", "experiments/get-by-name", {"experiment_name": "same"}).json()
    assert body["experiment"]["experiment_id"] == str(personal.pk)


def test_get_by_name_finds_team_experiments(client_for, viewer, editor, team) -> None:
    shared = services.experiment_create(user=editor, team=team, name="shared")
    body = call(client_for(viewer), "GET", "experiments/get-by-name", {"experiment_name": "shared"}).json()
    assert body["experiment"]["experiment_id"] == str(shared.pk)


def test_get_by_name_unknown_is_resource_does_not_exist(client_for, editor) -> None:
    response = call(client_for(editor), "GET", "experiments/get-by-name", {"experiment_name": "none"})
    assert error_of(response) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert "Could not find experiment with name 'none'" in response.json()["message"]


def test_search_filters_orders_and_pages(client_for, editor, team) -> None:
    for name in ["b-exp", "a-exp", "c-other"]:
        services.experiment_create(user=editor, team=team, name=name)
    client = client_for(editor)
    body = {"filter": "name LIKE '%-exp'", "order_by": ["name ASC"], "max_results": 1}
    first = call(client, "POST", "experiments/search", body).json()
    assert [e["name"] for e in first["experiments"]] == ["a-exp"]
    second = call(client, "POST", "experiments/search", {**body, "page_token": first["next_page_token"]}).json()
    assert [e["name"] for e in second["experiments"]] == ["b-exp"]
    assert "next_page_token" not in second


def test_search_by_tag_and_view_type(client_for, editor, team_admin, team) -> None:
    kept = services.experiment_create(user=editor, team=team, name="kept", tags={"k": "v"})
    gone = services.experiment_create(user=editor, team=team, name="gone", tags={"k": "v"})
    services.experiment_delete(user=team_admin, experiment=gone)
    client = client_for(editor)
    found = call(client, "GET", "experiments/search", {"filter": "tags.k = 'v'"}).json()["experiments"]
    assert [e["experiment_id"] for e in found] == [str(kept.pk)]
    deleted = call(client, "POST", "experiments/search", {"view_type": "DELETED_ONLY"}).json()["experiments"]
    assert [e["experiment_id"] for e in deleted] == [str(gone.pk)]


def test_search_tag_not_equal_needs_the_tag(client_for, editor, team) -> None:
    """As in MLflow (and the run filter), ``tags.k != 'x'`` skips experiments that have no tag ``k``."""
    other = services.experiment_create(user=editor, team=team, name="other", tags={"k": "w"})
    services.experiment_create(user=editor, team=team, name="same", tags={"k": "v"})
    services.experiment_create(user=editor, team=team, name="untagged")
    client = client_for(editor)
    found = call(client, "POST", "experiments/search", {"filter": "tags.k != 'v'"}).json()["experiments"]
    assert [e["experiment_id"] for e in found] == [str(other.pk)]


@pytest.mark.parametrize(
    "body",
    [
        {"filter": "name LIKE"},
        {"filter": "name = 'a' OR name = 'b'"},
        {"filter": "metrics.acc > 1"},
        {"filter": "creation_time > 'yesterday'"},
        {"order_by": ["color DESC"]},
        {"order_by": ["name sideways"]},
        {"view_type": "SOMETIMES"},
        {"max_results": 0},
        {"max_results": 50001},
        {"page_token": "%%%"},
    ],
)
def test_search_bad_input_is_invalid_parameter_value(client_for, editor, body) -> None:
    response = call(client_for(editor), "POST", "experiments/search", body)
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")


def test_update_renames(client_for, editor, team) -> None:
    experiment = services.experiment_create(user=editor, team=team, name="old")
    response = call(
        client_for(editor), "POST", "experiments/update", {"experiment_id": str(experiment.pk), "new_name": "new"}
    )
    assert response.status_code == 200
    experiment.refresh_from_db()
    assert experiment.name == "new"


def test_viewer_cannot_rename(client_for, viewer, editor, team) -> None:
    experiment = services.experiment_create(user=editor, team=team, name="old")
    response = call(
        client_for(viewer), "POST", "experiments/update", {"experiment_id": str(experiment.pk), "new_name": "new"}
    )
    assert error_of(response) == (403, "PERMISSION_DENIED")
    experiment.refresh_from_db()
    assert experiment.name == "old"


def test_delete_and_restore_need_admin_and_are_audited(client_for, editor, team_admin, team) -> None:
    experiment = services.experiment_create(user=editor, team=team, name="exp")
    body = {"experiment_id": str(experiment.pk)}
    assert error_of(call(client_for(editor), "POST", "experiments/delete", body)) == (403, "PERMISSION_DENIED")
    assert call(client_for(team_admin), "POST", "experiments/delete", body).status_code == 200
    experiment.refresh_from_db()
    assert experiment.lifecycle_stage == "deleted"
    assert AuditEvent.objects.filter(action="experiment.delete", actor=team_admin).exists()
    assert call(client_for(team_admin), "POST", "experiments/restore", body).status_code == 200
    experiment.refresh_from_db()
    assert experiment.lifecycle_stage == "active"


def test_set_and_delete_experiment_tag(client_for, editor, team) -> None:
    experiment = services.experiment_create(user=editor, team=team, name="exp")
    client = client_for(editor)
    body = {"experiment_id": str(experiment.pk), "key": "k", "value": "v"}
    assert call(client, "POST", "experiments/set-experiment-tag", body).status_code == 200
    assert ExperimentTag.objects.get(experiment=experiment, key="k").value == "v"
    assert call(client, "POST", "experiments/delete-experiment-tag", body).status_code == 200
    assert not ExperimentTag.objects.filter(experiment=experiment).exists()


def test_set_tag_with_bad_key_writes_nothing(client_for, editor, team) -> None:
    experiment = services.experiment_create(user=editor, team=team, name="exp")
    body = {"experiment_id": str(experiment.pk), "key": "../x", "value": "v"}
    response = call(client_for(editor), "POST", "experiments/set-experiment-tag", body)
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    assert not ExperimentTag.objects.filter(experiment=experiment).exists()


def test_delete_unknown_tag_is_resource_does_not_exist(client_for, editor, team) -> None:
    experiment = services.experiment_create(user=editor, team=team, name="exp")
    body = {"experiment_id": str(experiment.pk), "key": "nope"}
    response = call(client_for(editor), "POST", "experiments/delete-experiment-tag", body)
    assert error_of(response) == (404, "RESOURCE_DOES_NOT_EXIST")
