"""MLflow 3 logged models and run inputs/outputs through the Django test client."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEvent
from experiments import services as tracking
from experiments.mlflow.models import (
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelTag,
    RunDatasetInput,
    RunModelLink,
)
from experiments.mlflow.selectors import runs_inputs_outputs
from experiments.models import Metric
from tests.mlflow_client.helpers import call, error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(editor, team):
    """A running run in a new experiment of ``team``."""
    experiment = tracking.experiment_create(user=editor, team=team, name="exp")
    return tracking.run_create(user=editor, experiment=experiment)


def _create(client, run, **extra):
    body = {"experiment_id": str(run.experiment_id), "name": "model", "source_run_id": run.run_uuid, **extra}
    return call(client, "POST", "logged-models", body)


def test_create_renders_a_pending_model_with_mlflows_artifact_layout(client_for, editor, run) -> None:
    response = _create(
        client_for(editor), run, params=[{"key": "alpha", "value": "1"}], tags=[{"key": "k", "value": "v"}]
    )
    info = response.json()["model"]["info"]
    stored = LoggedModel.objects.get(model_id=info["model_id"])
    assert info["model_id"].startswith("m-") and info["status"] == "LOGGED_MODEL_PENDING"
    assert info["source_run_id"] == run.run_uuid and info["experiment_id"] == str(run.experiment_id)
    assert info["artifact_uri"] == f"mlflow-artifacts:/{run.experiment_id}/models/{info['model_id']}/artifacts"
    assert response.json()["model"]["data"]["params"] == [{"key": "alpha", "value": "1"}]
    assert stored.team_id == run.team_id and stored.tags.get().value == "v"


def test_create_in_another_teams_experiment_is_not_found(client_for, outsider, run) -> None:
    response = _create(client_for(outsider), run)
    assert error_of(response) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert not LoggedModel.objects.exists()


@pytest.mark.parametrize(
    "extra",
    [{"name": "a/b"}, {"params": [{"key": "../x", "value": "1"}]}, {"tags": "nope"}, {"model_type": 7}],
)
def test_create_bad_input_writes_nothing(client_for, editor, run, extra) -> None:
    response = _create(client_for(editor), run, **extra)
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    assert not LoggedModel.objects.exists()


def test_finalize_tags_params_get_and_delete(client_for, editor, team_admin, run) -> None:
    client = client_for(editor)
    model_id = _create(client, run).json()["model"]["info"]["model_id"]
    url = f"logged-models/{model_id}"
    finalized = call(client, "PATCH", url, {"model_id": model_id, "status": "LOGGED_MODEL_READY"}).json()
    assert finalized["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    assert call(client, "PATCH", f"{url}/tags", {"tags": [{"key": "t", "value": "1"}]}).status_code == 200
    assert call(client, "POST", f"{url}/params", {"params": [{"key": "p", "value": "2"}]}).status_code == 200
    assert call(client, "DELETE", f"{url}/tags/t").status_code == 200
    model = LoggedModel.objects.get(model_id=model_id)
    assert not LoggedModelTag.objects.filter(model=model).exists()
    assert LoggedModelParam.objects.get(model=model).value == "2"
    assert call(client, "GET", url).json()["model"]["info"]["model_id"] == model_id

    assert error_of(call(client, "DELETE", url)) == (403, "PERMISSION_DENIED")
    assert call(client_for(team_admin), "DELETE", url).status_code == 200
    assert error_of(call(client, "GET", url)) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert call(client, "GET", url, {"allow_deleted": "true"}).status_code == 200
    assert AuditEvent.objects.filter(action="logged_model.delete").exists()


@pytest.mark.parametrize("status", ["DONE", None])
def test_finalize_with_a_bad_status_changes_nothing(client_for, editor, run, status) -> None:
    client = client_for(editor)
    model_id = _create(client, run).json()["model"]["info"]["model_id"]
    body = {} if status is None else {"status": status}
    assert error_of(call(client, "PATCH", f"logged-models/{model_id}", body)) == (400, "INVALID_PARAMETER_VALUE")
    assert LoggedModel.objects.get(model_id=model_id).status == "LOGGED_MODEL_PENDING"


def test_changing_a_param_is_refused(client_for, editor, run) -> None:
    client = client_for(editor)
    model_id = _create(client, run, params=[{"key": "p", "value": "1"}]).json()["model"]["info"]["model_id"]
    response = call(client, "POST", f"logged-models/{model_id}/params", {"params": [{"key": "p", "value": "2"}]})
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    assert LoggedModelParam.objects.get(key="p").value == "1"


@pytest.mark.parametrize("model_id", ["m-nothere", f"m-{'0' * 32}", "42"])
def test_unknown_model_is_resource_does_not_exist(client_for, editor, model_id) -> None:
    assert error_of(call(client_for(editor), "GET", f"logged-models/{model_id}")) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_delete_unknown_tag_is_not_found(client_for, editor, run) -> None:
    client = client_for(editor)
    model_id = _create(client, run).json()["model"]["info"]["model_id"]
    assert error_of(call(client, "DELETE", f"logged-models/{model_id}/tags/nope")) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_search_by_name_and_source_run(client_for, editor, run) -> None:
    client = client_for(editor)
    wanted = _create(client, run, name="model").json()["model"]["info"]["model_id"]
    _create(client, run, name="other")
    body = {
        "experiment_ids": [str(run.experiment_id)],
        "filter": f"name = 'model' AND source_run_id = '{run.run_uuid}'",
        "order_by": [{"field_name": "creation_timestamp", "ascending": False}],
        "max_results": 1,
    }
    found = call(client, "POST", "logged-models/search", body).json()
    assert [m["info"]["model_id"] for m in found["models"]] == [wanted]
    assert "next_page_token" not in found


def test_search_param_not_equal_needs_the_param(client_for, editor, run) -> None:
    """``params.p != 'x'`` matches models whose ``p`` differs, not models without ``p`` (MLflow's meaning)."""
    client = client_for(editor)
    wanted = _create(client, run, name="b", params=[{"key": "p", "value": "2"}]).json()["model"]["info"]["model_id"]
    _create(client, run, name="a", params=[{"key": "p", "value": "1"}])
    _create(client, run, name="none")
    body = {"experiment_ids": [str(run.experiment_id)], "filter": "params.p != '1'"}
    found = call(client, "POST", "logged-models/search", body).json()["models"]
    assert [m["info"]["model_id"] for m in found] == [wanted]


def test_search_pages(client_for, editor, run) -> None:
    client = client_for(editor)
    for name in ["a", "b"]:
        _create(client, run, name=name)
    body = {"experiment_ids": [str(run.experiment_id)], "order_by": [{"field_name": "name"}], "max_results": 1}
    first = call(client, "POST", "logged-models/search", body).json()
    second = call(client, "POST", "logged-models/search", {**body, "page_token": first["next_page_token"]}).json()
    assert [first["models"][0]["info"]["name"], second["models"][0]["info"]["name"]] == ["a", "b"]


@pytest.mark.parametrize(
    "extra",
    [
        {"experiment_ids": []},
        {"filter": "colour = 'red'"},
        {"filter": "params.p > 1"},
        {"order_by": [{"field_name": "colour"}]},
        {"order_by": ["name"]},
        {"order_by": [{"field_name": "name", "ascending": "yes"}]},
        {"max_results": 5000},
    ],
)
def test_search_bad_input(client_for, editor, run, extra) -> None:
    body = {"experiment_ids": [str(run.experiment_id)], **extra}
    assert error_of(call(client_for(editor), "POST", "logged-models/search", body)) == (400, "INVALID_PARAMETER_VALUE")


def test_artifacts_upload_to_the_models_folder_and_list(client_for, editor, run, artifact_root: Path) -> None:
    client = client_for(editor)
    info = _create(client, run).json()["model"]["info"]
    rest = f"{run.experiment_id}/models/{info['model_id']}/artifacts/MLmodel"
    put = client.put(f"/api/2.0/mlflow-artifacts/artifacts/{rest}", data=b"flavors: {}", content_type="text/plain")
    assert put.status_code == 200
    assert (artifact_root / rest).read_bytes() == b"flavors: {}"
    listed = call(client, "GET", f"logged-models/{info['model_id']}/artifacts/directories").json()
    assert listed == {
        "root_uri": info["artifact_uri"],
        "files": [{"path": "MLmodel", "is_dir": False, "file_size": 11}],
    }


def test_artifacts_under_the_wrong_experiment_are_not_found(client_for, editor, run) -> None:
    client = client_for(editor)
    model_id = _create(client, run).json()["model"]["info"]["model_id"]
    response = client.put(
        f"/api/2.0/mlflow-artifacts/artifacts/999/models/{model_id}/artifacts/x", data=b"x", content_type="text/plain"
    )
    assert error_of(response) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_log_outputs_and_inputs_show_in_get_run(client_for, editor, run) -> None:
    client = client_for(editor)
    model_id = _create(client, run).json()["model"]["info"]["model_id"]
    assert (
        call(
            client, "POST", "runs/outputs", {"run_id": run.run_uuid, "models": [{"model_id": model_id, "step": 3}]}
        ).status_code
        == 200
    )
    dataset = {"name": "iris", "digest": "abc123", "source_type": "local", "source": "{}", "schema": "{}"}
    body = {
        "run_id": run.run_uuid,
        "datasets": [{"dataset": dataset, "tags": [{"key": "mlflow.data.context", "value": "train"}]}],
        "models": [{"model_id": model_id}],
    }
    assert call(client, "POST", "runs/log-inputs", body).status_code == 200
    rendered = call(client, "GET", "runs/get", {"run_id": run.run_uuid}).json()["run"]
    assert rendered["outputs"] == {"model_outputs": [{"model_id": model_id, "step": 3}]}
    assert rendered["inputs"]["model_inputs"] == [{"model_id": model_id}]
    assert rendered["inputs"]["dataset_inputs"][0]["dataset"]["name"] == "iris"
    assert RunModelLink.objects.filter(run=run).count() == 2


@pytest.mark.parametrize(
    "body",
    [
        {"datasets": [{"dataset": {"name": "x" * 501, "digest": "d", "source_type": "s", "source": "s"}}]},
        {"datasets": [{"dataset": {"name": "x", "digest": "", "source_type": "s", "source": "s"}}]},
        {"datasets": [{"nodataset": True}]},
        {
            "datasets": [
                {
                    "dataset": {"name": "x", "digest": "d", "source_type": "s", "source": "s"},
                    "tags": [{"key": "../k", "value": "v"}],
                }
            ]
        },
        {"models": [{"step": 1}]},
    ],
)
def test_log_inputs_bad_input_writes_nothing(client_for, editor, run, body) -> None:
    response = call(client_for(editor), "POST", "runs/log-inputs", {"run_id": run.run_uuid, **body})
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    assert not RunDatasetInput.objects.exists()


@pytest.mark.parametrize("models", [[], [{"model_id": "m-x", "step": "later"}]])
def test_log_outputs_bad_input_writes_nothing(client_for, editor, run, models) -> None:
    client = client_for(editor)
    if models:
        models = [{**models[0], "model_id": _create(client, run).json()["model"]["info"]["model_id"]}]
    response = call(client, "POST", "runs/outputs", {"run_id": run.run_uuid, "models": models})
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    assert not RunModelLink.objects.exists()


def test_viewer_cannot_log_outputs(client_for, editor, viewer, run) -> None:
    model_id = _create(client_for(editor), run).json()["model"]["info"]["model_id"]
    response = call(
        client_for(viewer), "POST", "runs/outputs", {"run_id": run.run_uuid, "models": [{"model_id": model_id}]}
    )
    assert error_of(response) == (403, "PERMISSION_DENIED")
    assert not RunModelLink.objects.exists()


def test_inputs_and_outputs_cost_one_query_when_a_run_has_none(run, django_assert_num_queries) -> None:
    with django_assert_num_queries(1):
        assert runs_inputs_outputs([run]) == {run.pk: ({}, {})}
    with django_assert_num_queries(0):
        assert runs_inputs_outputs([]) == {}


# Metrics linked to logged models (``model_id`` on log-metric / log-batch items) -------------------


def _log(client, run, metrics):
    return call(client, "POST", "runs/log-batch", {"run_id": run.run_uuid, "metrics": metrics})


def _model_metrics(client, model_id):
    return call(client, "GET", f"logged-models/{model_id}").json()["model"]["data"]["metrics"]


def test_log_metric_with_a_model_id_shows_in_the_models_metrics(client_for, editor, run) -> None:
    client = client_for(editor)
    model_id = _create(client, run).json()["model"]["info"]["model_id"]
    body = {"run_id": run.run_uuid, "key": "acc", "value": 0.75, "timestamp": 5, "step": 2, "model_id": model_id}
    dataset = {"dataset_name": "eval", "dataset_digest": "abc123"}
    assert call(client, "POST", "runs/log-metric", {**body, **dataset}).status_code == 200
    assert call(client, "POST", "runs/log-metric", {**body, "value": "NaN", "timestamp": 6}).status_code == 200
    assert call(client, "POST", "runs/log-metric", {**body, "value": "-Infinity", "timestamp": 7}).status_code == 200
    point = {"key": "acc", "step": 2, "run_id": run.run_uuid, "model_id": model_id}
    assert _model_metrics(client, model_id) == [
        {**point, "value": 0.75, "timestamp": 5, **dataset},
        {**point, "value": "NaN", "timestamp": 6},
        {**point, "value": "-Infinity", "timestamp": 7},
    ]
    # the run keeps its own history, each point once
    history = call(client, "GET", "metrics/get-history", {"run_id": run.run_uuid, "metric_key": "acc"}).json()
    assert [m["value"] for m in history["metrics"]] == [0.75, "NaN", "-Infinity"]
    # search renders the same points
    found = call(client, "POST", "logged-models/search", {"experiment_ids": [str(run.experiment_id)]}).json()
    assert found["models"][0]["data"]["metrics"] == _model_metrics(client, model_id)


def test_points_without_a_model_id_are_not_linked(client_for, editor, run) -> None:
    client = client_for(editor)
    model_id = _create(client, run).json()["model"]["info"]["model_id"]
    point = {"key": "loss", "value": 1, "timestamp": 1, "step": 0, "model_id": ""}
    assert _log(client, run, [point]).status_code == 200
    assert _model_metrics(client, model_id) == []
    assert not LoggedModelMetric.objects.exists()


@pytest.mark.parametrize("model_id", [f"m-{'0' * 32}", "m-nope", "not-a-model"])
def test_unknown_model_id_is_not_found_and_writes_nothing(client_for, editor, run, model_id) -> None:
    client = client_for(editor)
    metrics = [{"key": "ok", "value": 1, "timestamp": 1, "step": 0}, {"key": "acc", "value": 1, "timestamp": 1}]
    metrics[1]["model_id"] = model_id
    response = _log(client, run, metrics)
    assert error_of(response) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert model_id in response.json()["message"]
    single = {"run_id": run.run_uuid, "key": "acc", "value": 1, "timestamp": 1, "model_id": model_id}
    assert error_of(call(client, "POST", "runs/log-metric", single)) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert not Metric.objects.filter(run=run).exists()


def test_another_teams_model_id_is_not_found(client_for, editor, outsider, other_team, run) -> None:
    theirs = tracking.run_create(
        user=outsider, experiment=tracking.experiment_create(user=outsider, team=other_team, name="theirs")
    )
    their_model = _create(client_for(outsider), theirs).json()["model"]["info"]["model_id"]
    point = {"key": "acc", "value": 1, "timestamp": 1, "model_id": their_model}
    assert error_of(_log(client_for(editor), run, [point])) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert not Metric.objects.filter(run=run).exists() and not LoggedModelMetric.objects.exists()


def test_a_model_of_another_experiment_is_invalid(client_for, editor, team, run) -> None:
    client = client_for(editor)
    other = tracking.run_create(user=editor, experiment=tracking.experiment_create(user=editor, team=team, name="b"))
    model_id = _create(client, other).json()["model"]["info"]["model_id"]
    response = _log(client, run, [{"key": "acc", "value": 1, "timestamp": 1, "model_id": model_id}])
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    assert not Metric.objects.filter(run=run).exists() and not LoggedModelMetric.objects.exists()


@pytest.mark.parametrize(
    "extra",
    [
        {"dataset_name": "eval"},
        {"dataset_digest": "abc"},
        {"dataset_name": 7, "dataset_digest": "abc"},
        {"dataset_name": "eval", "dataset_digest": "d" * 37},
        {"model_id": 5},
    ],
)
def test_bad_model_link_writes_nothing(client_for, editor, run, extra) -> None:
    client = client_for(editor)
    model_id = _create(client, run).json()["model"]["info"]["model_id"]
    response = _log(client, run, [{"key": "acc", "value": 1, "timestamp": 1, "model_id": model_id, **extra}])
    assert error_of(response) == (400, "INVALID_PARAMETER_VALUE")
    assert not Metric.objects.filter(run=run).exists() and not LoggedModelMetric.objects.exists()


def test_get_loads_every_models_metrics_in_a_fixed_number_of_queries(
    client_for, editor, run, django_assert_max_num_queries
) -> None:
    client = client_for(editor)
    for name in ["a", "b", "c"]:
        model_id = _create(client, run, name=name).json()["model"]["info"]["model_id"]
        _log(client, run, [{"key": k, "value": 1, "timestamp": 1, "model_id": model_id} for k in ["x", "y"]])
    with django_assert_max_num_queries(12):
        found = call(client, "POST", "logged-models/search", {"experiment_ids": [str(run.experiment_id)]}).json()
    assert [len(m["data"]["metrics"]) for m in found["models"]] == [2, 2, 2]


@pytest.fixture
def scored(client_for, editor, run) -> dict[str, str]:
    """Models "high" (acc 0.9), "dropped" (acc 0.95 then, latest, 0.5), "nan" (acc NaN) and "none" (no acc)."""
    client = client_for(editor)
    ids = {name: _create(client, run, name=name).json()["model"]["info"]["model_id"] for name in ["high", "dropped"]}
    ids |= {name: _create(client, run, name=name).json()["model"]["info"]["model_id"] for name in ["nan", "none"]}
    points = [
        {"key": "acc", "value": 0.9, "timestamp": 1, "step": 0, "model_id": ids["high"]},
        {"key": "acc", "value": 0.95, "timestamp": 1, "step": 0, "model_id": ids["dropped"]},
        {"key": "acc", "value": 0.5, "timestamp": 2, "step": 1, "model_id": ids["dropped"]},
        {"key": "acc", "value": "NaN", "timestamp": 1, "step": 0, "model_id": ids["nan"]},
        {"key": "loss", "value": 0.1, "timestamp": 1, "step": 0, "model_id": ids["none"]},
    ]
    assert _log(client, run, points).status_code == 200
    return ids


def _search_names(client, run, **body) -> list[str]:
    response = call(client, "POST", "logged-models/search", {"experiment_ids": [str(run.experiment_id)], **body})
    assert response.status_code == 200, response.json()
    return [m["info"]["name"] for m in response.json()["models"]]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # any point of the key may match, as in MLflow; NaN matches no comparison but !=
        ("metrics.acc > 0.92", ["dropped"]),
        ("metrics.acc >= 0.5 AND name != 'high'", ["dropped"]),
        ("metrics.acc < 0.95", ["dropped", "high"]),
        ("metrics.acc != 0.9", ["dropped", "nan"]),
        ("metrics.`acc` = 0.9", ["high"]),
        ("metrics.loss <= 0.1", ["none"]),
        ("metrics.missing > 0", []),
    ],
)
def test_search_filters_on_metrics(client_for, editor, run, scored, text, names) -> None:
    order = [{"field_name": "name"}]
    assert _search_names(client_for(editor), run, filter=text, order_by=order) == names


@pytest.mark.parametrize(
    ("ascending", "names"),
    # by the latest point (dropped: 0.5); NaN and no point last either way
    [(True, ["dropped", "high", "none", "nan"]), (False, ["high", "dropped", "none", "nan"])],
)
def test_search_orders_by_a_metrics_latest_value(client_for, editor, run, scored, ascending, names) -> None:
    order = [{"field_name": "metrics.acc", "ascending": ascending}]
    # the models without a number tie: creation time (newest first) decides, as MLflow's tie-breaker
    assert _search_names(client_for(editor), run, order_by=order) == names


def test_search_orders_by_a_metric_of_one_dataset(client_for, editor, run) -> None:
    client = client_for(editor)
    ids = {name: _create(client, run, name=name).json()["model"]["info"]["model_id"] for name in ["a", "b"]}
    dataset = {"dataset_name": "eval", "dataset_digest": "d1"}
    points = [
        {"key": "acc", "value": 0.1, "timestamp": 1, "model_id": ids["a"], **dataset},
        {"key": "acc", "value": 0.9, "timestamp": 2, "model_id": ids["a"]},
        {"key": "acc", "value": 0.5, "timestamp": 1, "model_id": ids["b"], **dataset},
    ]
    assert _log(client, run, points).status_code == 200
    assert _search_names(client, run, order_by=[{"field_name": "metrics.acc", "ascending": False}]) == ["a", "b"]
    by_eval = [{"field_name": "metrics.acc", "ascending": False, **dataset}]
    assert _search_names(client, run, order_by=by_eval) == ["b", "a"]


@pytest.mark.parametrize(
    "extra",
    [
        {"filter": "metrics.acc = 'high'"},
        {"filter": "metrics.acc LIKE '0.%'"},
        {"order_by": [{"field_name": "params.p"}]},
        {"order_by": [{"field_name": "metrics.acc DESC"}]},
        {"order_by": [{"field_name": "metrics.acc", "dataset_name": 3}]},
    ],
)
def test_search_bad_metric_input(client_for, editor, run, extra) -> None:
    body = {"experiment_ids": [str(run.experiment_id)], **extra}
    assert error_of(call(client_for(editor), "POST", "logged-models/search", body)) == (400, "INVALID_PARAMETER_VALUE")


def test_admin_lists_and_shows_linked_metrics(admin_client, client_for, editor, run) -> None:
    client = client_for(editor)
    model_id = _create(client, run).json()["model"]["info"]["model_id"]
    assert _log(client, run, [{"key": "acc", "value": 0.5, "timestamp": 1, "model_id": model_id}]).status_code == 200
    point = LoggedModelMetric.objects.get()
    listing = admin_client.get("/admin/mlflow_facade/loggedmodelmetric/")
    assert listing.status_code == 200 and model_id in listing.content.decode()
    assert admin_client.get(f"/admin/mlflow_facade/loggedmodelmetric/{point.pk}/change/").status_code == 200
    assert admin_client.get("/admin/mlflow_facade/loggedmodelmetric/add/").status_code == 403


def test_linking_to_more_models_costs_no_more_queries(client_for, editor, run) -> None:
    """The models a batch names are looked up together, without loading their points, tags or params."""
    client = client_for(editor)
    ids = [_create(client, run, name=name).json()["model"]["info"]["model_id"] for name in ["a", "b", "c"]]

    def queries_for(model_ids: list[str], timestamp: int) -> int:
        points = [{"key": "acc", "value": 1, "timestamp": timestamp, "model_id": model_id} for model_id in model_ids]
        with CaptureQueriesContext(connection) as captured:
            assert _log(client, run, points).status_code == 200
        return len(captured)

    assert queries_for(ids, 2) == queries_for(ids[:1], 3)
    assert LoggedModelMetric.objects.count() == 4
    # one point linked to three models is one point of the run's history
    assert sorted(Metric.objects.filter(run=run).values_list("timestamp", flat=True)) == [2, 3]
