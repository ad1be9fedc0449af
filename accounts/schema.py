"""OpenAPI (drf-spectacular) descriptions of the authentication schemes."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Personal API tokens sent as ``Authorization: Bearer mlp_...``."""

    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        """Bearer scheme with an opaque token."""
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "mlp_<prefix>_<secret>",
            "description": "Personal API token created at /api/v1/tokens/ (shown once).",
        }


class BasicScheme(OpenApiAuthenticationExtension):
    """HTTP Basic with a password or an API token as the password."""

    target_class = "accounts.authentication.BasicAuthentication"
    name = "basicAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        """HTTP Basic."""
        return {
            "type": "http",
            "scheme": "basic",
            "description": "Username and password, or username and an API token as the password.",
        }
