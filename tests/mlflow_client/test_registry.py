"""The model registry and MLflow 3 logged models through the unchanged mlflow client."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from accounts.models import Role
from accounts.tests.factories import MembershipFactory, TeamFactory, UserFactory
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


def test_logged_model_metrics_through_the_client(mlflow_env: ClientUser) -> None:
    """``log_model`` links the run's step-0 points to the model; ``log_metric(model_id=...)`` adds more."""
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient

    class Identity(mlflow.pyfunc.PythonModel):
        def predict(self, context: object, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
            return model_input

    experiment_id = mlflow.set_experiment("linked").experiment_id
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 0.25, step=0)
        info = mlflow.pyfunc.log_model(name="model", python_model=Identity(), pip_requirements=[])
        other = mlflow.pyfunc.log_model(name="other", python_model=Identity(), pip_requirements=[])
        mlflow.log_metric("acc", 0.9, step=1, model_id=info.model_id)
        mlflow.log_metric("acc", 0.4, step=1, model_id=other.model_id)

    client = MlflowClient()
    metrics = sorted(client.get_logged_model(info.model_id).metrics, key=lambda m: m.key)
    assert [(m.key, m.value, m.step, m.run_id, m.model_id) for m in metrics] == [
        ("acc", 0.9, 1, run.info.run_id, info.model_id),
        ("loss", 0.25, 0, run.info.run_id, info.model_id),
    ]
    # the run's own history is unchanged: one loss point, one acc point per log_metric call
    assert [m.value for m in client.get_metric_history(run.info.run_id, "loss")] == [0.25]
    assert sorted(m.value for m in client.get_metric_history(run.info.run_id, "acc")) == [0.4, 0.9]

    found = client.search_logged_models(experiment_ids=[experiment_id], filter_string="metrics.acc > 0.5")
    assert [m.model_id for m in found] == [info.model_id]
    ordered = client.search_logged_models(
        experiment_ids=[experiment_id], order_by=[{"field_name": "metrics.acc", "ascending": True}]
    )
    assert [m.model_id for m in ordered] == [other.model_id, info.model_id]


def test_log_metric_to_an_unknown_or_invisible_model_is_resource_does_not_exist(mlflow_env: ClientUser) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    from experiments import services as tracking
    from experiments.mlflow import services as facade

    owner = UserFactory(username="bob")
    audio = TeamFactory(name="audio", slug="audio")
    MembershipFactory(user=owner, team=audio, role=Role.OWNER)
    theirs = tracking.experiment_create(user=owner, team=audio, name="theirs")
    their_model = facade.logged_model_create(user=owner, experiment=theirs, name="secret")

    mlflow.set_experiment("mine")
    with mlflow.start_run() as run:
        for model_id in [f"m-{'0' * 32}", their_model.model_id]:
            with pytest.raises(MlflowException) as raised:
                mlflow.log_metric("acc", 0.5, model_id=model_id)
            assert raised.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert mlflow.MlflowClient().get_metric_history(run.info.run_id, "acc") == []
    assert not their_model.metrics.exists()
