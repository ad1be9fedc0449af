"""Accounts app: users, teams, memberships and who may do what."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """App config for accounts."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"
