"""Small request helpers for the in-process (Django test client) façade tests."""

from __future__ import annotations

import json
from typing import Any

from rest_framework.test import APIClient

PREFIX = "/api/2.0/mlflow/"


def call(client: APIClient, method: str, path: str, body: Any = None, **extra: Any) -> Any:
    """Send ``body`` as MLflow does: query string for GET, JSON for every other method."""
    url = path if path.startswith("/") else PREFIX + path
    if method == "GET":
        return client.get(url, body or {}, **extra)
    data = body if isinstance(body, (str, bytes)) else json.dumps(body if body is not None else {})
    return getattr(client, method.lower())(url, data=data, content_type="application/json", **extra)


def error_of(response: Any) -> tuple[int, str]:
    """(status, MLflow error_code) of an error response."""
    return response.status_code, response.json()["error_code"]
