"""The one JSON encoding of NaN and ±inf used by the API, WebSockets and webhooks."""

import json
import math

from mlplatform.nonfinite import NonFiniteJSONRenderer, encode_float, json_safe


def test_encode_float():
    assert encode_float(1.5) == 1.5
    assert encode_float(math.nan) == "NaN"
    assert encode_float(math.inf) == "Infinity"
    assert encode_float(-math.inf) == "-Infinity"


def test_json_safe_walks_nested_containers():
    content = {"a": [math.nan, 1.0, (math.inf,)], "b": {"c": -math.inf}, "d": "NaN", "e": 3}
    assert json_safe(content) == {"a": ["NaN", 1.0, ["Infinity"]], "b": {"c": "-Infinity"}, "d": "NaN", "e": 3}


def test_renderer_writes_strict_json():
    body = NonFiniteJSONRenderer().render({"v": [math.nan, 2.0]})
    assert json.loads(body) == {"v": ["NaN", 2.0]}
