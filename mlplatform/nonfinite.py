"""JSON with non-finite floats, one implementation for the API, WebSockets and webhooks.

Training code produces NaN and ±inf; JSON has no such numbers. On the way in the bare tokens
``NaN``, ``Infinity``, ``-Infinity`` (what Python's ``json`` writes) are accepted; on the way out
they travel as the strings "NaN", "Infinity", "-Infinity", as MLflow's protobuf JSON does.
"""

from __future__ import annotations

import math
from typing import Any

from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer


def encode_float(value: float) -> float | str:
    """A float for JSON: NaN and ±inf become the strings "NaN", "Infinity", "-Infinity"."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


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
