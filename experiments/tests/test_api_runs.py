"""Native API: runs (create, list/search, detail, update, delete/restore, tags, events)."""

import math

import pytest
from rest_framework import serializers

from experiments import selectors, services
from experiments.api.serializers import RunOutputSerializer
from experiments.models import LifecycleStage, Run, RunTag
from experiments.tests.api import assert_error, url
from experiments.tests.factories import ExperimentFactory, LatestMetricFactory, ParamFactory, RunFactory, RunTagFactory


def test_create_run(client_for, editor, experiment):
    response = client_for(editor).post(
        url("run-list"),
        {"experiment_id": experiment.pk, "name": "bert", "start_time": 5, "tags": [{"key": "a", "value": "1"}]},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    run = Run.objects.get()
    assert body["run_id"] == run.run_uuid and body["name"] == "bert" and body["start_time"] == 5
    assert body["experiment_id"] == experiment.pk and body["status"] == "RUNNING" and body["user"] == editor.username
    assert body["tags"] == {"a": "1", "mlflow.runName": "bert"} and body["params"] == {} and body["metrics"] == {}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 400),
        ({"experiment_id": "abc"}, 400),
        ({"experiment_id": 10**9}, 404),
        ({"status": "DONE"}, 400),
        ({"start_time": "yesterday"}, 400),
        ({"tags": {"../x": "1"}}, 400),
        ({"tags": 5}, 400),
        ({"name": "x" * 251}, 400),
    ],
)
def test_create_bad_input_writes_nothing(client_for, editor, experiment, body, status):
    payload = {"experiment_id": experiment.pk, **body} if "experiment_id" not in body and body else body
    response = client_for(editor).post(url("run-list"), payload, format="json")
    assert_error(response, status)
    assert not Run.objects.exists() and not RunTag.objects.exists()


def test_create_in_foreign_experiment_is_404(client_for, editor, other_team):
    foreign = ExperimentFactory(team=other_team)
    assert_error(client_for(editor).post(url("run-list"), {"experiment_id": foreign.pk}, format="json"), 404)
    assert not Run.objects.exists()


def test_list_with_filter_order_and_pages(client_for, viewer, experiment):
    for i in range(5):
        run = RunFactory(experiment=experiment, name=f"r{i}")
        LatestMetricFactory(run=run, key="acc", value=i / 10)
        ParamFactory(run=run, key="model", value="cnn" if i % 2 else "mlp")
    client = client_for(viewer)
    response = client.get(
        url("run-list"),
        {
            "experiment_id": experiment.pk,
            "filter": "params.model = 'mlp'",
            "order_by": "metrics.acc DESC",
            "page_size": 2,
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert [r["name"] for r in body["results"]] == ["r4", "r2"] and body["next_page_token"]
    assert body["results"][0]["metrics"]["acc"] == {"value": 0.4, "step": 0, "timestamp": 1_700_000_000_000}
    assert body["results"][0]["params"] == {"model": "mlp"}
    second = client.get(body["next"]).json()
    assert [r["name"] for r in second["results"]] == ["r0"] and second["next"] is None


def test_list_several_order_keys_and_experiments(client_for, viewer, team, experiment):
    second = ExperimentFactory(team=team)
    RunFactory(experiment=experiment, name="a", start_time=1)
    RunFactory(experiment=second, name="b", start_time=2)
    response = client_for(viewer).get(
        url("run-list"),
        {"experiment_id": [experiment.pk, second.pk], "order_by": ["attributes.status", "start_time ASC"]},
    )
    assert [r["name"] for r in response.json()["results"]] == ["a", "b"]


@pytest.mark.parametrize(
    "params",
    [
        {"filter": "metrics.acc >"},
        {"filter": "params.x = '1' or 1=1 --"},
        {"order_by": "metrics.acc SIDEWAYS"},
        {"page_size": 0},
        {"page_size": "many"},
        {"page_token": "%%%"},
        {"run_view": "sometimes"},
        {"experiment_id": "abc"},
    ],
)
def test_list_bad_input_is_400(client_for, viewer, run, params):
    assert_error(client_for(viewer).get(url("run-list"), params), 400)


def test_list_syntax_error_says_where(client_for, viewer, run):
    error = assert_error(client_for(viewer).get(url("run-list"), {"filter": "metrics.acc > 0.9 and"}), 400)
    assert error["code"] == "invalid_filter" and error["details"] == {"column": 22} and "column 22" in error["message"]


def test_list_foreign_experiment_is_404(client_for, viewer, other_run):
    assert_error(client_for(viewer).get(url("run-list"), {"experiment_id": other_run.experiment_id}), 404)


def test_list_query_count_is_constant(client_for, viewer, experiment, django_assert_max_num_queries):
    for _ in range(25):
        run = RunFactory(experiment=experiment)
        ParamFactory(run=run)
        RunTagFactory(run=run)
        LatestMetricFactory(run=run)
    with django_assert_max_num_queries(6):
        response = client_for(viewer).get(url("run-list"), {"experiment_id": experiment.pk})
    assert len(response.json()["results"]) == 25


def test_detail_includes_params_tags_and_latest_metrics(client_for, viewer, run, django_assert_max_num_queries):
    ParamFactory(run=run, key="lr", value="0.1")
    RunTagFactory(run=run, key="t", value="x")
    LatestMetricFactory(run=run, key="loss", value=0.0, is_nan=True, step=3)
    with django_assert_max_num_queries(5):
        response = client_for(viewer).get(url("run-detail", run_uuid=run.run_uuid))
    body = response.json()
    assert body["params"] == {"lr": "0.1"} and body["tags"] == {"t": "x"}
    assert body["metrics"]["loss"]["value"] == "NaN" and body["metrics"]["loss"]["step"] == 3


def test_detail_unknown_foreign_or_malformed_is_404(client_for, viewer, other_run):
    for run_uuid in [other_run.run_uuid, "f" * 32]:
        assert_error(client_for(viewer).get(url("run-detail", run_uuid=run_uuid)), 404)
    assert_error(client_for(viewer).get("/api/v1/runs/not-a-run-id/"), 404)


def test_patch_status_end_time_and_name(client_for, editor, run):
    response = client_for(editor).patch(
        url("run-detail", run_uuid=run.run_uuid), {"status": "FINISHED", "end_time": 99, "name": "done"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["end_time"], body["name"]) == ("FINISHED", 99, "done")
    assert body["tags"]["mlflow.runName"] == "done"


@pytest.mark.parametrize("body", [{"status": "DONE"}, {"end_time": "later"}, {"name": None}, {"name": "x" * 251}])
def test_patch_bad_input_is_400(client_for, editor, run, body):
    assert_error(client_for(editor).patch(url("run-detail", run_uuid=run.run_uuid), body, format="json"), 400)
    fresh = Run.objects.get(pk=run.pk)
    assert (fresh.status, fresh.end_time, fresh.last_seq) == ("RUNNING", None, 1)


def test_patch_deleted_run_is_400(client_for, editor, run):
    Run.objects.filter(pk=run.pk).update(lifecycle_stage=LifecycleStage.DELETED)
    assert_error(
        client_for(editor).patch(url("run-detail", run_uuid=run.run_uuid), {"status": "FINISHED"}, format="json"), 400
    )


def test_delete_and_restore(client_for, team_admin, run):
    client = client_for(team_admin)
    assert client.delete(url("run-detail", run_uuid=run.run_uuid)).status_code == 204
    assert Run.objects.get(pk=run.pk).lifecycle_stage == LifecycleStage.DELETED
    response = client.post(url("run-restore", run_uuid=run.run_uuid))
    assert response.status_code == 200 and response.json()["lifecycle_stage"] == "active"


def test_tags_set_and_delete(client_for, editor, run):
    client = client_for(editor)
    response = client.post(url("run-tags", run_uuid=run.run_uuid), {"key": "stage/x", "value": "a"}, format="json")
    assert response.status_code == 200 and response.json() == {"key": "stage/x", "value": "a"}
    assert RunTag.objects.get(run=run, key="stage/x").value == "a"
    assert client.delete(url("run-tag-detail", run_uuid=run.run_uuid, key="stage/x")).status_code == 204
    assert not RunTag.objects.filter(run=run).exists()
    assert_error(client.delete(url("run-tag-detail", run_uuid=run.run_uuid, key="stage/x")), 404)


@pytest.mark.parametrize("body", [{}, {"key": "k", "value": None}, {"key": "/abs", "value": "v"}])
def test_tag_bad_input_is_400(client_for, editor, run, body):
    assert_error(client_for(editor).post(url("run-tags", run_uuid=run.run_uuid), body, format="json"), 400)
    assert not RunTag.objects.filter(run=run).exists()


def test_events_catch_up(client_for, editor, run):
    services.log_metric(user=editor, run=run, key="loss", value=float("nan"), step=1, timestamp=7)
    response = client_for(editor).get(url("run-events", run_uuid=run.run_uuid), {"since": 1})
    assert response.status_code == 200
    body = response.json()
    assert body["seq"] == 2 and body["metrics"] == {"loss": [[1, 7, "NaN"]]}


@pytest.mark.parametrize("since", ["-1", "x", "1.5"])
def test_events_bad_since_is_400(client_for, editor, run, since):
    assert_error(client_for(editor).get(url("run-events", run_uuid=run.run_uuid), {"since": since}), 400)


@pytest.mark.parametrize("with_user", [True, False])
def test_run_rendering_equals_drf_field_by_field_rendering(editor, run, with_user):
    """RunOutputSerializer builds its dict directly; it must say exactly what its declared fields say."""
    services.log_batch(
        user=editor,
        run=run,
        metrics=[{"key": "loss", "value": math.nan, "step": 3, "timestamp": 9}, {"key": "acc", "value": 0.5}],
        params=[{"key": "lr", "value": "0.1"}],
        tags=[{"key": "note", "value": "x"}],
    )
    if not with_user:
        Run.objects.filter(pk=run.pk).update(user=None)
    loaded = selectors.run_detail(user=editor, run_uuid=run.run_uuid)
    serializer = RunOutputSerializer()
    fast = serializer.to_representation(loaded)
    assert fast == dict(serializers.ModelSerializer.to_representation(serializer, loaded))
    assert fast["metrics"]["loss"]["value"] == "NaN" and fast["params"] == {"lr": "0.1"}
