"""App config: the façade's own tables (MLflow 3 logged models, run inputs/outputs)."""

from django.apps import AppConfig


class MlflowFacadeConfig(AppConfig):
    """MLflow façade; a separate app so its tables and migrations stay in ``experiments/mlflow``."""

    name = "experiments.mlflow"
    label = "mlflow_facade"
    verbose_name = "MLflow compatibility"
    default_auto_field = "django.db.models.BigAutoField"
