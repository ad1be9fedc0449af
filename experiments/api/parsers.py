"""Request parsing for the experiments API."""

from __future__ import annotations

from rest_framework.parsers import JSONParser


class NonFiniteJSONParser(JSONParser):
    """JSON that also accepts the ``NaN``, ``Infinity`` and ``-Infinity`` tokens training code emits.

    DRF's parser is strict and would reject them; responses never contain them (values are
    rendered as the strings "NaN", "Infinity", "-Infinity").
    """

    strict = False
