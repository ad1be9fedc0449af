"""Experiments app: experiments, runs, params, metrics, tags, artifacts."""

from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    """App config for experiments."""

    name = "experiments"
    default_auto_field = "django.db.models.BigAutoField"
