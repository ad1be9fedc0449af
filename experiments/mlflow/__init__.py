"""MLflow REST API 2.0 façade for tracking and proxied artifacts (see ``mlplatform.mlflow_api``)."""
