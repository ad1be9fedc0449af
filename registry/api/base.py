"""Plumbing shared by the registry's views: input parsing and non-finite JSON (pagination: mlplatform.api)."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from mlplatform.nonfinite import NonFiniteJSONParser, NonFiniteJSONRenderer


class RegistryView(APIView):
    """Base view: JSON in (NaN tokens allowed) and out (non-finite floats as strings)."""

    renderer_classes = [NonFiniteJSONRenderer]
    parser_classes = [NonFiniteJSONParser]


def valid(serializer_class: type[Serializer], data: Any, **kwargs: Any) -> dict[str, Any]:
    """Validated input, or a 400 in the error envelope."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def query(serializer_class: type[Serializer], request: Request) -> dict[str, Any]:
    """Validated query parameters."""
    return valid(serializer_class, request.query_params)
