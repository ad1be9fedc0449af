"""JSON with non-finite floats, one implementation for the API, WebSockets and webhooks.

Training code produces NaN and ±inf; JSON has no such numbers. On the way in the bare tokens
``NaN``, ``Infinity``, ``-Infinity`` (what Python's ``json`` writes) are accepted; on the way out
they travel as the strings "NaN", "Infinity", "-Infinity", as MLflow's protobuf JSON does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import orjson
from django.http import HttpResponse
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer


def encode_float(value: float) -> float | str:
    """A float for JSON: NaN and ±inf become the strings "NaN", "Infinity", "-Infinity"."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def encode_points(points: Iterable[tuple[int, int, float]]) -> list[dict[str, Any]]:
    """``(step, timestamp, value)`` tuples as ``{step, timestamp, value}`` objects ready for JSON."""
    # ``v - v == 0`` is False exactly for NaN and ±inf: one float op per point instead of a call.
    return [
        {"step": step, "timestamp": ts, "value": value if value - value == 0 else encode_float(value)}
        for step, ts, value in points
    ]


def json_bytes_response(content: Any, status: int = 200) -> HttpResponse:
    """A JSON response rendered with orjson, for large bodies (metric history).

    orjson writes non-finite floats as ``null``, so callers pass content whose floats already went
    through ``encode_float``/``encode_points``.
    """
    return HttpResponse(orjson.dumps(content), status=status, content_type="application/json")


def json_safe(content: Any) -> Any:
    """``content`` with every non-finite float, at any depth, replaced by its string form."""
    if isinstance(content, float):
        return encode_float(content)
    if isinstance(content, dict):
        return {key: json_safe(value) for key, value in content.items()}
    if isinstance(content, list | tuple):
        return [json_safe(value) for value in content]
    return content


class NonFiniteJSONParser(JSONParser):
    """JSON input that may contain the bare ``NaN``/``Infinity``/``-Infinity`` tokens."""

    strict = False


class NonFiniteJSONRenderer(JSONRenderer):
    """Strict JSON output with non-finite floats rendered as strings."""

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        """Replace non-finite floats, then render as usual."""
        return super().render(json_safe(data), accepted_media_type, renderer_context)
