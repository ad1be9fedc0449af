"""mlplatform: experiment tracking, model registry and deployments."""

__version__ = "0.1.0"
