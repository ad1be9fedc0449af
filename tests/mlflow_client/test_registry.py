"""The model registry and MLflow 3 logged models through the unchanged mlflow client."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from experiments.mlflow.models import LoggedModel, RunModelLink
from registry.models import Alias, ModelVersion, RegisteredModel, StageTransition
from tests.mlflow_client.conftest import ClientUser

pytestmark = pytest.mark.django_db(transaction=True)


def _run_with_model_dir(tmp_path: Path) -> str:
    import mlflow

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    (model_dir / "weights.bin").write_bytes(b"w" * 10)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
    return run.info.run_id


def test_register_versions_aliases_and_stages(mlflow_env: ClientUser, tmp_path: Path) -> None:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_experiment("registry")
    run_id = _run_with_model_dir(tmp_path)
    first = mlflow.register_model(f"runs:/{run_id}/model", "classifier")
    second = mlflow.register_model(f"runs:/{run_id}/model", "classifier")
    assert (first.version, second.version) == ("1", "2")
    assert first.run_id == run_id

    stored = RegisteredModel.objects.get(name="classifier")
    assert stored.team.is_personal
    assert list(stored.versions.order_by("version").values_list("version", flat=True)) == [1, 2]

    client = MlflowClient()
    client.set_registered_model_alias("classifier", "champion", "1")
    assert client.get_model_version_by_alias("classifier", "champion").version == "1"
    client.set_registered_model_alias("classifier", "champion", "2")
    assert Alias.objects.get(model=stored, alias="champion").version.version == 2

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        client.transition_model_version_stage("classifier", "1", "Production")
        client.transition_model_version_stage("classifier", "2", "production", archive_existing_versions=True)
        latest = client.get_latest_versions("classifier", stages=["Production", "Archived"])
    assert {(v.version, v.current_stage) for v in latest} == {("2", "Production"), ("1", "Archived")}
    assert StageTransition.objects.filter(version__model=stored).count() == 3

    client.set_model_version_tag("classifier", "2", "validated", "yes")
    client.update_model_version("classifier", "2", description="best so far")
    version = client.get_model_version("classifier", "2")
    assert version.tags == {"validated": "yes"} and version.description == "best so far"
    assert version.aliases == ["champion"]

    found = client.search_model_versions("name = 'classifier'")
    assert sorted(v.version for v in found) == ["1", "2"]
    assert [m.name for m in client.search_registered_models(filter_string="name LIKE 'class%'")] == ["classifier"]

    local = Path(mlflow.artifacts.download_artifacts("models:/classifier/2", dst_path=str(tmp_path / "dl")))
    assert (local / "MLmodel").exists()
    assert client.get_model_version_download_uri("classifier", "1").endswith(f"{run_id}/artifacts/model")

    client.delete_model_version("classifier", "1")
    assert not ModelVersion.objects.filter(model=stored, version=1).exists()
    client.rename_registered_model("classifier", "classifier-v2")
    client.update_registered_model("classifier-v2", description="renamed")
    assert client.get_registered_model("classifier-v2").description == "renamed"
    client.delete_registered_model("classifier-v2")
    assert not RegisteredModel.objects.filter(pk=stored.pk).exists()


def test_unknown_model_is_resource_does_not_exist(mlflow_env: ClientUser) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as caught:
        MlflowClient().get_registered_model("nope")
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_pyfunc_log_model_and_register_round_trip(mlflow_env: ClientUser, tmp_path: Path) -> None:
    import mlflow
    import pandas as pd

    class Doubler(mlflow.pyfunc.PythonModel):
        def predict(self, context: object, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
            return model_input * 2

    mlflow.set_experiment("pyfunc")
    with mlflow.start_run() as run:
        mlflow.log_param("alpha", "0.5")
        mlflow.log_metric("loss", 0.25, step=0)
        info = mlflow.pyfunc.log_model(name="model", python_model=Doubler(), pip_requirements=[])

    logged = LoggedModel.objects.get(model_id=info.model_id)
    assert logged.source_run.run_uuid == run.info.run_id
    assert logged.status == "LOGGED_MODEL_READY"
    assert RunModelLink.objects.filter(run=logged.source_run, model=logged, direction="output").exists()
    assert logged.params.get(key="alpha").value == "0.5"
    # log_model re-sends the run's step-0 points with the model's id; the run's history keeps one copy
    assert [(m.step, m.value) for m in mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")] == [(0, 0.25)]

    version = mlflow.register_model(f"runs:/{run.info.run_id}/model", "doubler")
    assert version.version == "1"
    assert version.source == f"models:/{info.model_id}"

    loaded = mlflow.pyfunc.load_model("models:/doubler/1")
    assert list(loaded.predict(pd.DataFrame({"x": [1, 2]}))["x"]) == [2, 4]
    mlflow.MlflowClient().set_registered_model_alias("doubler", "prod", "1")
    by_alias = mlflow.pyfunc.load_model("models:/doubler@prod")
    assert list(by_alias.predict(pd.DataFrame({"x": [3]}))["x"]) == [6]
