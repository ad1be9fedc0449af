"""Pure helpers of the streaming consumers: strict-JSON encoding and the resume point parser."""

import math

import pytest

from experiments.consumers import json_safe, parse_since, query_param


def test_json_safe_replaces_non_finite_floats_everywhere():
    content = {"a": [math.nan, 1.5, (math.inf,)], "b": {"c": -math.inf}, "d": "NaN"}
    assert json_safe(content) == {"a": ["NaN", 1.5, ["Infinity"]], "b": {"c": "-Infinity"}, "d": "NaN"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(0, 0), (7, 7), ("12", 12), (-1, None), ("-1", None), (True, None), ("١٢", None), ("9" * 19, None), (1.0, None)],
)
def test_parse_since(raw, expected):
    assert parse_since(raw) == expected


def test_query_param_keeps_blank_values_and_takes_the_last():
    scope = {"query_string": b"since=&token=a&since=5"}
    assert query_param(scope, "since") == "5"
    assert query_param({"query_string": b"since="}, "since") == ""
    assert query_param({}, "since") is None
