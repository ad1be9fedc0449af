"""``/mlflow/runs/...`` and ``/mlflow/metrics/...`` through the Django test client."""

from __future__ import annotations

import json
import math

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from accounts.models import AuditEvent
from experiments import services
from experiments.live import event_of
from experiments.mlflow.models import LoggedModelMetric
from experiments.models import LatestMetric, Metric, Param, Run, RunTag
from mlplatform.events import run_group
from tests.mlflow_client.helpers import call, error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment(editor, team):
    """An experiment in ``team``."""
    return services.experiment_create(user=editor, team=team, name="exp")


@pytest.fixture
def run(editor, experiment):
    """A running run in ``experiment``."""
    return services.run_create(user=editor, experiment=experiment, name="r1")


def test_create_run_renders_mlflow_run(client_for, editor, experiment) -> None:
    body = {
        "experiment_id": str(experiment.pk),
        "start_time": 1_700_000_000_000,
        "run_name": "first",
        "tags": [{"key": "mlflow.user", "value": "alice"}],
        "user_id": "ignored",
    }
    response = call(client_for(editor), "POST", "runs/create", body)
    info = response.json()["run"]["info"]
    stored = Run.objects.get(run_uuid=info["run_id"])
    assert info["run_uuid"] == info["run_id"] and len(info["run_id"]) == 32
    assert info["experiment_id"] == str(experiment.pk) and info["status"] == "RUNNING"
    assert info["start_time"] == 1_700_000_000_000 and info["run_name"] == "first"
    assert info["artifact_uri"] == f"mlflow-artifacts:/{experiment.pk}/{stored.run_uuid}/artifacts"
    assert {"key": "mlflow.user", "value": "alice"} in response.json()["run"]["data"]["tags"]
    assert stored.user == editor


def test_create_run_without_experiment_uses_default(client_for, editor) -> None:
    response = call(client_for(editor), "POST", "runs/create", {})
    run = Run.objects.get(run_uuid=response.json()["run"]["info"]["run_id"])
    assert run.experiment.name == "Default" and run.experiment.team.is_personal


def test_viewer_cannot_create_runs(client_for, viewer, experiment) -> None:
    response = call(client_for(viewer), "POST", "runs/create", {"experiment_id": str(experiment.pk)})
    assert error_of(response) == (403, "PERMISSION_DENIED")
    assert not Run.objects.exists()


def test_update_run_status_and_end_time(client_for, editor, run) -> None:
    body = {"run_id": run.run_uuid, "status": "FINISHED", "end_time": 1_700_000_000_999}
    info = call(client_for(editor), "POST", "runs/update", body).json()["run_info"]
    assert info["status"] == "FINISHED" and info["end_time"] == 1_700_000_000_999
    run.refresh_from_db()
    assert run.status == "FINISHED"


def test_update_accepts_the_older_run_uuid_field(client_for, editor, run) -> None:
    response = call(client_for(editor), "POST", "runs/update", {"run_uuid": run.run_uuid, "status": "KILLED"})
    assert response.status_code == 200
    run.refresh_from_db()
    assert run.status == "KILLED"


@pytest.mark.parametrize("status", ["DONE", True, 9])
def test_update_with_bad_status_changes_nothing(client_for, editor, run, status) -> None:
    response = call(client_for(editor), "POST", "runs/update", {"run_id": run.run_uuid, "status": status})
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    run.refresh_from_db()
    assert run.status == "RUNNING"


def test_get_unknown_run_is_resource_does_not_exist(client_for, editor) -> None:
    response = call(client_for(editor), "GET", "runs/get", {"run_id": "0" * 32})
    assert error_of(response) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_get_run_of_another_team_is_resource_does_not_exist(client_for, outsider, run) -> None:
    response = call(client_for(outsider), "GET", "runs/get", {"run_id": run.run_uuid})
    assert error_of(response) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_log_metric_accepts_nan_and_numeric_strings(client_for, editor, run) -> None:
    client = client_for(editor)
    for value, step in [("NaN", 0), ("1.5", 1), (2, 2)]:
        body = {"run_id": run.run_uuid, "key": "m", "value": value, "timestamp": 1_700_000_000_000, "step": step}
        assert call(client, "POST", "runs/log-metric", body).status_code == 200
    history = list(Metric.objects.filter(run=run, key="m").order_by("step"))
    assert math.isnan(history[0].float_value) and history[1].value == 1.5
    rendered = call(client, "GET", "runs/get", {"run_id": run.run_uuid}).json()["run"]["data"]["metrics"]
    assert rendered == [{"key": "m", "value": 2.0, "timestamp": 1_700_000_000_000, "step": 2}]


@pytest.mark.parametrize(
    "body",
    [
        {"key": "m"},
        {"key": "m", "value": "lots"},
        {"key": "bad key!", "value": 1},
        {"key": "m", "value": 1, "step": "x"},
        {"key": "m", "value": 1, "timestamp": 1.5},
    ],
)
def test_log_metric_bad_input_writes_nothing(client_for, editor, run, body) -> None:
    response = call(client_for(editor), "POST", "runs/log-metric", {"run_id": run.run_uuid, **body})
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    assert not Metric.objects.filter(run=run).exists()


def test_log_param_is_immutable(client_for, editor, run) -> None:
    client = client_for(editor)
    assert (
        call(client, "POST", "runs/log-parameter", {"run_id": run.run_uuid, "key": "lr", "value": "1"}).status_code
        == 200
    )
    response = call(client, "POST", "runs/log-parameter", {"run_id": run.run_uuid, "key": "lr", "value": "2"})
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    assert Param.objects.get(run=run, key="lr").value == "1"


def test_set_and_delete_tag(client_for, editor, run) -> None:
    client = client_for(editor)
    assert call(client, "POST", "runs/set-tag", {"run_id": run.run_uuid, "key": "k", "value": "v"}).status_code == 200
    assert RunTag.objects.get(run=run, key="k").value == "v"
    assert call(client, "POST", "runs/delete-tag", {"run_id": run.run_uuid, "key": "k"}).status_code == 200
    assert not RunTag.objects.filter(run=run, key="k").exists()
    response = call(client, "POST", "runs/delete-tag", {"run_id": run.run_uuid, "key": "k"})
    assert error_of(response) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_log_batch_writes_everything_in_constant_queries(
    client_for, editor, run, django_assert_max_num_queries
) -> None:
    client = client_for(editor)
    metrics = [{"key": f"m{i % 10}", "value": i, "timestamp": 1, "step": i} for i in range(1000)]
    body = {"run_id": run.run_uuid, "metrics": metrics}
    with django_assert_max_num_queries(12):
        assert call(client, "POST", "runs/log-batch", body).status_code == 200
    assert Metric.objects.filter(run=run).count() == 1000
    assert LatestMetric.objects.get(run=run, key="m9").step == 999


def test_log_batch_relinking_points_to_a_model_does_not_double_history(client_for, editor, run) -> None:
    """MLflow 3's ``log_model`` re-sends the run's points with a ``model_id``: history keeps one copy of each."""
    client = client_for(editor)
    first = [
        {"key": "loss", "value": 0.5, "timestamp": 10, "step": 0},
        {"key": "nan", "value": "NaN", "timestamp": 10, "step": 0},
    ]
    assert call(client, "POST", "runs/log-batch", {"run_id": run.run_uuid, "metrics": first}).status_code == 200
    body = {"experiment_id": str(run.experiment_id), "name": "model", "source_run_id": run.run_uuid}
    model_id = call(client, "POST", "logged-models", body).json()["model"]["info"]["model_id"]
    relinked = [
        {**first[0], "model_id": model_id, "run_id": run.run_uuid},
        {**first[1], "model_id": model_id},
        # the same key and step with another value or time is a new point, model_id or not
        {"key": "loss", "value": 0.25, "timestamp": 11, "step": 0, "model_id": model_id},
        {"key": "loss", "value": "0.5", "timestamp": "12", "step": "0", "model_id": model_id},
    ]
    assert call(client, "POST", "runs/log-batch", {"run_id": run.run_uuid, "metrics": relinked}).status_code == 200
    points = sorted(Metric.objects.filter(run=run).values_list("key", "timestamp", "value"))
    assert points == [("loss", 10, 0.5), ("loss", 11, 0.25), ("loss", 12, 0.5), ("nan", 10, 0.0)]
    # sent again (a retry, a second log_model): neither the history nor the model's points double
    assert call(client, "POST", "runs/log-batch", {"run_id": run.run_uuid, "metrics": relinked}).status_code == 200
    assert Metric.objects.filter(run=run).count() == 4
    linked = sorted(LoggedModelMetric.objects.values_list("key", "timestamp", "value", "is_nan"))
    assert linked == [
        ("loss", 10, 0.5, False),
        ("loss", 11, 0.25, False),
        ("loss", 12, 0.5, False),
        ("nan", 10, 0.0, True),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": 0}] * 1001},
        {"params": [{"key": f"p{i}", "value": "v"} for i in range(101)]},
        {"tags": [{"key": "t", "value": "x" * 8001}]},
        {"metrics": "not-a-list"},
        {"metrics": [{"key": "ok", "value": 1, "timestamp": 1}, {"key": "bad", "value": "x", "timestamp": 1}]},
        {"params": [{"key": "p", "value": "a"}, {"key": "p", "value": "b"}]},
        {"params": [42]},
    ],
)
def test_log_batch_bad_input_writes_nothing(client_for, editor, run, body) -> None:
    response = call(client_for(editor), "POST", "runs/log-batch", {"run_id": run.run_uuid, **body})
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    assert not Metric.objects.filter(run=run).exists()
    assert not Param.objects.filter(run=run).exists()
    assert not RunTag.objects.filter(run=run, key="t").exists()


def test_log_batch_publishes_the_same_live_event(client_for, editor, run, django_capture_on_commit_callbacks) -> None:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(run_group(run.run_uuid), channel)
    body = {"run_id": run.run_uuid, "metrics": [{"key": "loss", "value": 0.5, "timestamp": 1, "step": 3}]}
    with django_capture_on_commit_callbacks(execute=True):
        assert call(client_for(editor), "POST", "runs/log-batch", body).status_code == 200
    message = event_of(async_to_sync(layer.receive)(channel))
    assert message["kind"] == "metrics" and message["metrics"] == {"loss": [[3, 1, 0.5]]}


def test_delete_and_restore_run_are_audited(client_for, team_admin, run) -> None:
    client = client_for(team_admin)
    assert call(client, "POST", "runs/delete", {"run_id": run.run_uuid}).status_code == 200
    run.refresh_from_db()
    assert run.lifecycle_stage == "deleted"
    assert call(client, "POST", "runs/restore", {"run_id": run.run_uuid}).status_code == 200
    assert set(AuditEvent.objects.filter(actor=team_admin).values_list("action", flat=True)) >= {
        "run.delete",
        "run.restore",
    }


def test_editor_cannot_delete_runs(client_for, editor, run) -> None:
    response = call(client_for(editor), "POST", "runs/delete", {"run_id": run.run_uuid})
    assert error_of(response) == (403, "PERMISSION_DENIED")
    run.refresh_from_db()
    assert run.lifecycle_stage == "active"


def test_log_model_appends_to_the_history_tag(client_for, editor, run) -> None:
    client = client_for(editor)
    for artifact_path in ["a", "b"]:
        body = {"run_id": run.run_uuid, "model_json": f'{{"artifact_path": "{artifact_path}"}}'}
        assert call(client, "POST", "runs/log-model", body).status_code == 200
    value = RunTag.objects.get(run=run, key="mlflow.log-model.history").value
    assert [m["artifact_path"] for m in json.loads(value)] == ["a", "b"]


def test_log_model_with_bad_json_writes_nothing(client_for, editor, run) -> None:
    response = call(client_for(editor), "POST", "runs/log-model", {"run_id": run.run_uuid, "model_json": "{"})
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    assert not RunTag.objects.filter(run=run, key="mlflow.log-model.history").exists()


def _runs_with_metric(editor, experiment, values):
    runs = []
    for index, value in enumerate(values):
        run = services.run_create(user=editor, experiment=experiment, name=f"r{index}")
        services.log_batch(user=editor, run=run, metrics=[{"key": "acc", "value": value, "timestamp": 1, "step": 0}])
        runs.append(run)
    return runs


def test_search_runs_filters_orders_and_pages(client_for, editor, experiment) -> None:
    _low, high, mid = _runs_with_metric(editor, experiment, [0.1, 0.9, 0.5])
    client = client_for(editor)
    body = {
        "experiment_ids": [str(experiment.pk)],
        "filter": "metrics.acc > 0.2",
        "order_by": ["metrics.acc DESC"],
        "max_results": 1,
    }
    first = call(client, "POST", "runs/search", body).json()
    assert [r["info"]["run_id"] for r in first["runs"]] == [high.run_uuid]
    second = call(client, "POST", "runs/search", {**body, "page_token": first["next_page_token"]}).json()
    assert [r["info"]["run_id"] for r in second["runs"]] == [mid.run_uuid]
    assert "next_page_token" not in second


def test_search_runs_over_the_selector_page_size_returns_a_token(client_for, editor, experiment, monkeypatch) -> None:
    from experiments import selectors

    _runs_with_metric(editor, experiment, [0.1, 0.2, 0.3])
    monkeypatch.setattr(selectors, "MAX_SEARCH_RESULTS", 2)
    body = {"experiment_ids": [str(experiment.pk)], "max_results": 10_000}
    first = call(client_for(editor), "POST", "runs/search", body).json()
    assert len(first["runs"]) == 2 and first["next_page_token"]


def test_search_runs_deleted_view(client_for, editor, team_admin, experiment) -> None:
    run = services.run_create(user=editor, experiment=experiment)
    services.run_delete(user=team_admin, run=run)
    body = {"experiment_ids": [str(experiment.pk)], "run_view_type": "DELETED_ONLY"}
    found = call(client_for(editor), "POST", "runs/search", body).json()["runs"]
    assert [r["info"]["run_id"] for r in found] == [run.run_uuid]


@pytest.mark.parametrize(
    "body",
    [
        {"filter": "metrics.acc >"},
        {"order_by": ["metrics.acc SIDEWAYS"]},
        {"max_results": 50001},
        {"max_results": 0},
        {"run_view_type": "SOME"},
        {"experiment_ids": "1"},
    ],
)
def test_search_runs_bad_input_is_invalid_parameter_value(client_for, editor, experiment, body) -> None:
    response = call(client_for(editor), "POST", "runs/search", {"experiment_ids": [str(experiment.pk)], **body})
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")


def test_search_runs_in_another_teams_experiment_is_not_found(client_for, outsider, experiment) -> None:
    response = call(client_for(outsider), "POST", "runs/search", {"experiment_ids": [str(experiment.pk)]})
    assert error_of(response) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_metric_history_pages_in_step_order(client_for, editor, run) -> None:
    metrics = [{"key": "loss", "value": float(s), "timestamp": 10 + s, "step": s} for s in range(5)]
    services.log_batch(user=editor, run=run, metrics=metrics)
    client = client_for(editor)
    first = call(client, "GET", "metrics/get-history", {"run_id": run.run_uuid, "metric_key": "loss", "max_results": 3})
    assert [m["step"] for m in first.json()["metrics"]] == [0, 1, 2]
    assert first.json()["metrics"][0] == {
        "key": "loss",
        "value": 0.0,
        "timestamp": 10,
        "step": 0,
        "run_id": run.run_uuid,
    }
    params = {
        "run_id": run.run_uuid,
        "metric_key": "loss",
        "max_results": 3,
        "page_token": first.json()["next_page_token"],
    }
    second = call(client, "GET", "metrics/get-history", params).json()
    assert [m["step"] for m in second["metrics"]] == [3, 4] and "next_page_token" not in second


def test_metric_history_v3_route(client_for, editor, run) -> None:
    services.log_metric(user=editor, run=run, key="loss", value="NaN", timestamp=1, step=0)
    response = call(
        client_for(editor), "GET", "/api/3.0/mlflow/metrics/get-history", {"run_id": run.run_uuid, "metric_key": "loss"}
    )
    assert response.json()["metrics"][0]["value"] == "NaN"


@pytest.mark.parametrize("params", [{"max_results": 0}, {"max_results": "many"}, {"page_token": "bogus"}])
def test_metric_history_bad_input(client_for, editor, run, params) -> None:
    response = call(
        client_for(editor), "GET", "metrics/get-history", {"run_id": run.run_uuid, "metric_key": "loss", **params}
    )
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")


def test_bulk_interval_history_for_several_runs(client_for, editor, experiment) -> None:
    first, second = _runs_with_metric(editor, experiment, [0.1, 0.2])
    params = {"run_ids": [first.run_uuid, second.run_uuid], "metric_key": "acc", "max_results": 10}
    metrics = call(client_for(editor), "GET", "metrics/get-history-bulk-interval", params).json()["metrics"]
    assert {(m["run_id"], m["value"]) for m in metrics} == {(first.run_uuid, 0.1), (second.run_uuid, 0.2)}


@pytest.mark.parametrize(
    "params",
    [
        {"metric_key": "acc"},
        {"run_ids": ["a" * 32] * 101, "metric_key": "acc"},
        {"run_ids": ["a" * 32], "metric_key": "acc", "max_results": 0},
        {"run_ids": ["a" * 32], "metric_key": "acc", "start_step": 1, "end_step": 2},
    ],
)
def test_bulk_interval_bad_input(client_for, editor, params) -> None:
    response = call(client_for(editor), "GET", "metrics/get-history-bulk-interval", params)
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")


def test_native_api_sees_runs_logged_through_the_facade(client_for, editor, experiment) -> None:
    client = client_for(editor)
    created = call(client, "POST", "runs/create", {"experiment_id": str(experiment.pk)}).json()["run"]["info"]
    body = {"run_id": created["run_id"], "metrics": [{"key": "acc", "value": 0.75, "timestamp": 1, "step": 1}]}
    call(client, "POST", "runs/log-batch", body)
    native = client.get(f"/api/v1/runs/{created['run_id']}/")
    assert native.status_code == 200
    assert "0.75" in native.content.decode()


def test_facade_sees_metrics_logged_through_the_native_api(client_for, editor, run) -> None:
    client = client_for(editor)
    native = client.post(
        f"/api/v1/runs/{run.run_uuid}/log-batch/",
        {"metrics": [{"key": "native", "value": 3.0, "timestamp": 5, "step": 2}]},
        format="json",
    )
    assert native.status_code in {200, 201}
    metrics = call(client, "GET", "runs/get", {"run_id": run.run_uuid}).json()["run"]["data"]["metrics"]
    assert metrics == [{"key": "native", "value": 3.0, "timestamp": 5, "step": 2}]


def test_search_runs_uses_a_fixed_number_of_queries(
    client_for, editor, experiment, django_assert_max_num_queries
) -> None:
    _runs_with_metric(editor, experiment, [0.1] * 20)
    client = client_for(editor)
    with django_assert_max_num_queries(12):
        response = call(client, "POST", "runs/search", {"experiment_ids": [str(experiment.pk)]})
    assert len(response.json()["runs"]) == 20
