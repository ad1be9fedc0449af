"""Accounts app: users, teams, memberships and who may do what."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """App config for accounts."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect the login signal receivers (throttling and audit) and the OpenAPI auth schemes."""
        from accounts import schema, signals  # noqa: F401
