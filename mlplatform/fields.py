"""Serializer fields shared by the apps' native APIs."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers


@extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
class TagMapField(serializers.Field):
    """A read-only ``tags`` relation (rows with ``key`` and ``value``) rendered as ``{key: value}``.

    Uses ``.all()`` so a ``prefetch_related("tags")`` on the list query serves every object of a page.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs["read_only"] = True
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> dict[str, str]:
        """``{key: value}`` for each tag row."""
        return {tag.key: tag.value for tag in value.all()}
