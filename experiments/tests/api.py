"""Small helpers for API tests."""

from __future__ import annotations

from typing import Any

from django.urls import reverse


def url(name: str, **kwargs: Any) -> str:
    """Reverse an API route (version v1)."""
    return reverse(name, kwargs={"version": "v1", **kwargs})


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert the standard error envelope with ``status`` (and ``code``); return its ``error``."""
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"} and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error
