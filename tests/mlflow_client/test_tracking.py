"""The unchanged mlflow client's tracking flows against a real server (fluent API and MlflowClient)."""

from __future__ import annotations

import math

import pytest

from experiments.models import Experiment, LatestMetric, Metric, Run
from tests.mlflow_client.conftest import ClientUser, MlflowServer

pytestmark = pytest.mark.django_db(transaction=True)


def test_fluent_run_logs_params_metrics_tags_and_finishes(mlflow_env: ClientUser) -> None:
    import mlflow

    experiment_id = mlflow.set_experiment("mnist").experiment_id
    with mlflow.start_run(run_name="baseline") as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"epochs": 3, "optimizer": "adam"})
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.9, "nan_metric": math.nan}, step=2)
        mlflow.set_tag("stage", "dev")
        mlflow.set_tags({"owner": "alice"})

    stored = Run.objects.get(run_uuid=run.info.run_id)
    assert stored.experiment_id == int(experiment_id)
    assert stored.status == "FINISHED" and stored.end_time is not None
    assert stored.name == "baseline"
    assert stored.experiment.team.is_personal
    assert dict(stored.params.values_list("key", "value")) == {"lr": "0.01", "epochs": "3", "optimizer": "adam"}
    assert Metric.objects.filter(run=stored, key="loss").count() == 3
    assert LatestMetric.objects.get(run=stored, key="nan_metric").is_nan
    assert {"stage": "dev", "owner": "alice"}.items() <= dict(stored.tags.values_list("key", "value")).items()

    fetched = mlflow.get_run(run.info.run_id)
    assert fetched.data.params["epochs"] == "3"
    assert fetched.data.metrics["loss"] == pytest.approx(1 / 3)
    assert math.isnan(fetched.data.metrics["nan_metric"])
    assert fetched.info.artifact_uri == f"mlflow-artifacts:/{experiment_id}/{run.info.run_id}/artifacts"


def test_end_run_with_status_and_nested_runs(mlflow_env: ClientUser) -> None:
    import mlflow

    mlflow.set_experiment("nested")
    with mlflow.start_run() as parent:
        with mlflow.start_run(nested=True) as child:
            mlflow.log_metric("x", 1)
        mlflow.end_run(status="FAILED")

    assert Run.objects.get(run_uuid=parent.info.run_id).status == "FAILED"
    child_run = Run.objects.get(run_uuid=child.info.run_id)
    assert child_run.status == "FINISHED"
    assert child_run.tags.get(key="mlflow.parentRunId").value == parent.info.run_id


def test_default_experiment_is_created_in_the_personal_team(mlflow_env: ClientUser) -> None:
    import mlflow

    with mlflow.start_run() as run:
        mlflow.log_param("a", "1")

    experiment = Experiment.objects.get(pk=int(run.info.experiment_id))
    assert experiment.name == "Default"
    assert experiment.team.is_personal
    assert mlflow.MlflowClient().get_experiment("0").experiment_id == run.info.experiment_id


def test_search_runs_returns_a_dataframe_filtered_and_ordered(mlflow_env: ClientUser) -> None:
    import mlflow

    experiment_id = mlflow.set_experiment("search").experiment_id
    for lr, acc in [(0.1, 0.7), (0.01, 0.9), (0.001, 0.8)]:
        with mlflow.start_run():
            mlflow.log_param("lr", lr)
            mlflow.log_metric("acc", acc)

    frame = mlflow.search_runs(
        experiment_ids=[experiment_id], filter_string="metrics.acc > 0.75", order_by=["metrics.acc DESC"]
    )
    assert list(frame["metrics.acc"]) == [0.9, 0.8]
    assert list(frame["params.lr"]) == ["0.01", "0.001"]

    by_name = mlflow.search_runs(experiment_names=["search"], filter_string="params.lr = '0.1'")
    assert len(by_name) == 1


def test_metric_history_and_search_experiments_through_mlflow_client(mlflow_env: ClientUser) -> None:
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment_id = client.create_experiment("history", tags={"project": "p1"})
    run = client.create_run(experiment_id)
    client.log_batch(
        run.info.run_id,
        metrics=[
            mlflow.entities.Metric("loss", float(10 - step), 1_700_000_000_000 + step, step) for step in range(10)
        ],
    )
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == list(range(10))
    assert history[-1].value == 1.0

    found = client.search_experiments(filter_string="name = 'history'")
    assert [e.experiment_id for e in found] == [experiment_id]
    assert found[0].tags["project"] == "p1"
    assert client.get_experiment_by_name("history").experiment_id == experiment_id


def test_delete_and_restore_run(mlflow_env: ClientUser) -> None:
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment_id = client.create_experiment("lifecycle")
    run = client.create_run(experiment_id)
    client.delete_run(run.info.run_id)
    assert Run.objects.get(run_uuid=run.info.run_id).lifecycle_stage == "deleted"
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    client.restore_run(run.info.run_id)
    assert Run.objects.get(run_uuid=run.info.run_id).lifecycle_stage == "active"


def test_basic_auth_with_username_and_api_token(basic_auth_env: ClientUser) -> None:
    import mlflow

    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0)
    assert Run.objects.get(run_uuid=run.info.run_id).user == basic_auth_env.user


def test_basic_auth_with_username_and_password(password_auth_env: ClientUser) -> None:
    from mlflow import MlflowClient

    experiment_id = MlflowClient().create_experiment("by-password")
    assert Experiment.objects.get(pk=int(experiment_id)).created_by == password_auth_env.user


def test_no_credentials_is_unauthenticated(mlflow_env: ClientUser, monkeypatch) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    with pytest.raises(MlflowException) as caught:
        MlflowClient().search_experiments()
    assert caught.value.error_code == "UNAUTHENTICATED"


def test_unknown_run_raises_resource_does_not_exist(mlflow_env: ClientUser) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as caught:
        MlflowClient().get_run("0" * 32)
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_changing_a_param_raises_invalid_parameter_value(mlflow_env: ClientUser) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    run = client.create_run(client.create_experiment("params"))
    client.log_param(run.info.run_id, "lr", "0.1")
    with pytest.raises(MlflowException) as caught:
        client.log_param(run.info.run_id, "lr", "0.2")
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    assert Run.objects.get(run_uuid=run.info.run_id).params.get(key="lr").value == "0.1"


def test_raw_bad_requests_to_the_real_server(mlflow_env: ClientUser, mlflow_server) -> None:
    import requests

    headers = {"Authorization": f"Bearer {mlflow_env.token}", "Content-Type": "application/json"}
    base = f"{mlflow_server.url}/api/2.0/mlflow"
    malformed = requests.post(f"{base}/experiments/create", data=b'{"name":', headers=headers, timeout=10)
    assert (malformed.status_code, malformed.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    run = requests.post(f"{base}/runs/create", json={}, headers=headers, timeout=10).json()["run"]["info"]
    too_many = {"run_id": run["run_id"], "metrics": [{"key": "m", "value": 1, "timestamp": 1, "step": 0}] * 1001}
    over = requests.post(f"{base}/runs/log-batch", json=too_many, headers=headers, timeout=10)
    assert (over.status_code, over.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "1000" in over.json()["message"]
    assert not Metric.objects.filter(run__run_uuid=run["run_id"]).exists()


def test_client_writes_show_in_the_native_api_and_pages_and_back(
    mlflow_env: ClientUser, mlflow_server: MlflowServer, client
) -> None:
    """What the mlflow client logs, the native API and the run page show; what the native API logs, it reads."""
    import mlflow
    import requests
    from mlflow import MlflowClient

    mlflow.set_experiment("both-ways")
    with mlflow.start_run(run_name="from-client") as run:
        mlflow.log_param("lr", "0.125")
        mlflow.log_metric("acc", 0.875, step=4)
        mlflow.set_tag("origin", "mlflow")
    run_id = run.info.run_id

    headers = {"Authorization": f"Bearer {mlflow_env.token}"}
    native = requests.get(f"{mlflow_server.url}/api/v1/runs/{run_id}/", headers=headers, timeout=10)
    assert native.status_code == 200
    assert {"0.125", "0.875", "from-client", "mlflow"} <= set(_leaves(native.json()))

    client.force_login(mlflow_env.user)
    page = client.get(f"/runs/{run_id}/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "from-client" in body and ">lr</td>" in body and ">0.125</td>" in body and "acc" in body

    logged = requests.post(
        f"{mlflow_server.url}/api/v1/runs/{run_id}/log-batch/",
        json={"metrics": [{"key": "native", "value": 2.5, "timestamp": 1_700_000_000_000, "step": 7}]},
        headers=headers,
        timeout=10,
    )
    assert logged.status_code in {200, 201}
    mlflow_client = MlflowClient()
    assert [(m.step, m.value) for m in mlflow_client.get_metric_history(run_id, "native")] == [(7, 2.5)]
    frame = mlflow.search_runs(experiment_names=["both-ways"], filter_string="metrics.native > 2")
    assert list(frame["run_id"]) == [run_id]


def _leaves(value: object) -> list[str]:
    """Every scalar in a JSON document, as strings (the native shapes are not the façade's concern here)."""
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [str(value)]
