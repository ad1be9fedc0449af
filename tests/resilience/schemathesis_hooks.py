"""Schemathesis hooks for the API fuzzing test: every error answer must be the standard envelope."""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.check
def error_envelope(ctx: Any, response: Any, case: Any) -> None:
    """A 4xx/5xx from the native API is JSON ``{"error": {"code": str, "message": str, "details": object}}``."""
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"{response.status_code} error body is not JSON: {response.content[:200]!r}") from exc
    error = body.get("error") if isinstance(body, dict) else None
    valid = (
        isinstance(error, dict)
        and set(body) == {"error"}
        and isinstance(error.get("code"), str)
        and isinstance(error.get("message"), str)
        and isinstance(error.get("details"), dict)
    )
    if not valid:
        raise AssertionError(f"{response.status_code} error is not the standard envelope: {str(body)[:300]}")
    return None
