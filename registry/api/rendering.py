"""JSON in and out of the registry API with non-finite floats.

DRF's strict renderer raises on NaN/±inf; monitoring values may be non-finite, so they are rendered as
the strings "NaN", "Infinity", "-Infinity". The lenient parser also accepts the bare JSON tokens ``NaN``,
``Infinity`` and ``-Infinity`` that Python's ``json`` writes by default.
"""

from __future__ import annotations

from typing import Any

from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer

from registry.webhooks import json_safe


class NonFiniteJSONRenderer(JSONRenderer):
    """Strict JSON output with non-finite floats as strings."""

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        """Replace non-finite floats, then render as usual."""
        return super().render(json_safe(data), accepted_media_type, renderer_context)


class NonFiniteJSONParser(JSONParser):
    """JSON input that may contain the NaN/Infinity tokens."""

    strict = False
