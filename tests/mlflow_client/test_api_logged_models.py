"""MLflow 3 logged models and run inputs/outputs through the Django test client."""

from __future__ import annotations

from pathlib import Path

import pytest

from accounts.models import AuditEvent
from experiments import services as tracking
from experiments.mlflow.models import LoggedModel, LoggedModelParam, LoggedModelTag, RunDatasetInput, RunModelLink
from experiments.mlflow.selectors import runs_inputs_outputs
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
