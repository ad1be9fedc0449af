"""MLflow REST API 2.0 façade for the model registry (see ``mlplatform.mlflow_api``)."""
