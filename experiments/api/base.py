"""What every experiments API view shares: lenient JSON parsing and one way to validate input."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.views import APIView

from mlplatform.nonfinite import NonFiniteJSONParser


class ExperimentsAPIView(APIView):
    """Base view: JSON bodies may carry NaN/Infinity tokens; permissions are checked by services/selectors."""

    parser_classes = [NonFiniteJSONParser]


def parse(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """Validate ``data`` with an input serializer; errors become a 400 envelope."""
    if not hasattr(data, "get"):
        raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
