"""Native API: experiments."""

import pytest

from accounts.models import AuditEvent
from experiments.models import Experiment, ExperimentTag, LifecycleStage
from experiments.tests.api import assert_error, url
from experiments.tests.factories import ExperimentFactory, ExperimentTagFactory


def test_create_in_a_team(client_for, editor, team):
    response = client_for(editor).post(
        url("experiment-list"), {"name": "mnist", "team": team.pk, "tags": {"goal": "sota"}}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    experiment = Experiment.objects.get()
    assert body["id"] == experiment.pk and body["name"] == "mnist" and body["team_id"] == team.pk
    assert body["tags"] == {"goal": "sota"} and body["lifecycle_stage"] == "active"
    assert body["created_by"] == editor.username and body["artifact_location"] == f"mlflow-artifacts:/{experiment.pk}"


def test_create_without_team_goes_to_the_personal_team(client_for, viewer):
    response = client_for(viewer).post(url("experiment-list"), {"name": "scratch"}, format="json")
    assert response.status_code == 201
    assert Experiment.objects.get().team.is_personal


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": ["x"]}, "name"),
        ({"name": "x" * 501}, "name"),
        ({"name": "x", "team": "abc"}, "team"),
        ({"name": "x", "tags": "a=b"}, "tags"),
    ],
)
def test_create_bad_input_is_400_and_writes_nothing(client_for, editor, body, field):
    response = client_for(editor).post(url("experiment-list"), body, format="json")
    error = assert_error(response, 400, "invalid")
    assert field in error["details"]
    assert not Experiment.objects.exists()


def test_create_with_bad_tag_key_is_400(client_for, editor, team):
    response = client_for(editor).post(
        url("experiment-list"), {"name": "x", "team": team.pk, "tags": {"../k": "v"}}, format="json"
    )
    assert_error(response, 400)
    assert not Experiment.objects.exists() and not ExperimentTag.objects.exists()


def test_create_malformed_json_is_400(client_for, editor):
    response = client_for(editor).post(url("experiment-list"), '{"name": ', content_type="application/json")
    assert_error(response, 400, "parse_error")
    assert not Experiment.objects.exists()


def test_create_json_array_body_is_400(client_for, editor):
    response = client_for(editor).post(url("experiment-list"), "[1, 2]", content_type="application/json")
    assert_error(response, 400)


def test_create_in_unknown_or_foreign_team_is_404(client_for, editor, other_team):
    for team_id in [other_team.pk, 10**9]:
        response = client_for(editor).post(url("experiment-list"), {"name": "x", "team": team_id}, format="json")
        assert_error(response, 404, "not_found")
    assert not Experiment.objects.exists()


def test_create_duplicate_is_409(client_for, editor, experiment):
    response = client_for(editor).post(
        url("experiment-list"), {"name": experiment.name, "team": experiment.team_id}, format="json"
    )
    assert_error(response, 409, "conflict")
    assert Experiment.objects.count() == 1


def test_list_search_and_pagination(client_for, viewer, team, other_team):
    for i in range(5):
        ExperimentFactory(team=team, name=f"vision {i}")
    ExperimentFactory(team=team, name="speech")
    ExperimentFactory(team=other_team, name="vision hidden")
    client = client_for(viewer)
    response = client.get(url("experiment-list"), {"name": "VISION", "page_size": 3})
    assert response.status_code == 200
    body = response.json()
    assert [e["name"] for e in body["results"]] == ["vision 4", "vision 3", "vision 2"]
    second = client.get(body["next"]).json()
    assert [e["name"] for e in second["results"]] == ["vision 1", "vision 0"] and second["next"] is None
    assert len(client.get(url("experiment-list"), {"team": team.pk}).json()["results"]) == 6


def test_list_bad_filters_are_400(client_for, viewer):
    assert_error(client_for(viewer).get(url("experiment-list"), {"team": "x"}), 400)
    assert_error(client_for(viewer).get(url("experiment-list"), {"view": "gone"}), 400)


def test_list_deleted_view(client_for, viewer, team):
    ExperimentFactory(team=team, name="gone", lifecycle_stage=LifecycleStage.DELETED)
    response = client_for(viewer).get(url("experiment-list"), {"view": "deleted"})
    assert [e["name"] for e in response.json()["results"]] == ["gone"]


def test_list_query_count_is_constant(client_for, viewer, team, django_assert_max_num_queries):
    for i in range(20):
        ExperimentTagFactory(experiment=ExperimentFactory(team=team))
    with django_assert_max_num_queries(3):
        response = client_for(viewer).get(url("experiment-list"))
    assert len(response.json()["results"]) == 20


def test_detail(client_for, viewer, experiment):
    ExperimentTagFactory(experiment=experiment, key="k", value="v")
    response = client_for(viewer).get(url("experiment-detail", experiment_id=experiment.pk))
    assert response.status_code == 200 and response.json()["tags"] == {"k": "v"}


def test_detail_of_unknown_or_foreign_experiment_is_404(client_for, viewer, other_team):
    foreign = ExperimentFactory(team=other_team)
    for pk in [foreign.pk, 10**9]:
        assert_error(client_for(viewer).get(url("experiment-detail", experiment_id=pk)), 404)


def test_patch_renames(client_for, editor, experiment):
    response = client_for(editor).patch(
        url("experiment-detail", experiment_id=experiment.pk), {"name": "renamed", "description": "d"}, format="json"
    )
    assert response.status_code == 200 and response.json()["name"] == "renamed"
    experiment.refresh_from_db()
    assert (experiment.name, experiment.description) == ("renamed", "d")


def test_patch_bad_input_and_roles(client_for, viewer, editor, experiment):
    path = url("experiment-detail", experiment_id=experiment.pk)
    assert_error(client_for(editor).patch(path, {"name": ""}, format="json"), 400)
    assert_error(client_for(editor).patch(path, {"description": None}, format="json"), 400)
    assert_error(client_for(viewer).patch(path, {"name": "x"}, format="json"), 403, "permission_denied")
    experiment.refresh_from_db()
    assert experiment.name == "mnist"


def test_delete_and_restore(client_for, team_admin, experiment):
    client = client_for(team_admin)
    response = client.delete(url("experiment-detail", experiment_id=experiment.pk))
    assert response.status_code == 204
    experiment.refresh_from_db()
    assert experiment.lifecycle_stage == LifecycleStage.DELETED
    response = client.post(url("experiment-restore", experiment_id=experiment.pk))
    assert response.status_code == 200 and response.json()["lifecycle_stage"] == "active"
    assert AuditEvent.objects.count() == 2


def test_editor_cannot_delete(client_for, editor, experiment):
    assert_error(client_for(editor).delete(url("experiment-detail", experiment_id=experiment.pk)), 403)
    experiment.refresh_from_db()
    assert experiment.lifecycle_stage == LifecycleStage.ACTIVE


def test_tags_set_and_delete(client_for, editor, experiment):
    client = client_for(editor)
    response = client.post(
        url("experiment-tags", experiment_id=experiment.pk), {"key": "a/b", "value": "1"}, format="json"
    )
    assert response.status_code == 200 and response.json() == {"key": "a/b", "value": "1"}
    response = client.delete(url("experiment-tag-detail", experiment_id=experiment.pk, key="a/b"))
    assert response.status_code == 204 and not experiment.tags.exists()
    assert_error(client.delete(url("experiment-tag-detail", experiment_id=experiment.pk, key="a/b")), 404)


@pytest.mark.parametrize("body", [{}, {"key": "k"}, {"key": "../k", "value": "v"}, {"key": "k", "value": "v" * 8001}])
def test_tag_bad_input(client_for, editor, experiment, body):
    response = client_for(editor).post(url("experiment-tags", experiment_id=experiment.pk), body, format="json")
    assert_error(response, 400)
    assert not experiment.tags.exists()


def test_anonymous_is_401(api_client, experiment):
    response = api_client.get(url("experiment-detail", experiment_id=experiment.pk))
    assert_error(response, 401)
    assert response.has_header("WWW-Authenticate")
