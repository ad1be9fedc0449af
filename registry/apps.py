"""Registry app: registered models, versions, deployments and monitoring."""

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    """App config for registry."""

    name = "registry"
    default_auto_field = "django.db.models.BigAutoField"
