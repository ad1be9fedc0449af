"""MLflow limits and item validation (no database)."""

import math
import re

import pytest

from experiments import limits
from mlplatform.errors import InvalidInput


def metric(**overrides):
    return {"key": "loss", "value": 0.5, "timestamp": 1, "step": 0, **overrides}


def test_clean_metrics_accepts_numbers_and_non_finite_spellings():
    points = limits.clean_metrics(
        [metric(value=1), metric(value="NaN"), metric(value="Infinity"), metric(value="-Infinity"), metric(value=2.5)]
    )
    values = [p.value for p in points]
    assert values[0] == 1.0 and math.isnan(values[1]) and values[2] == math.inf and values[3] == -math.inf
    assert values[4] == 2.5


def test_clean_metrics_defaults_timestamp_to_now_and_step_to_zero():
    (point,) = limits.clean_metrics([{"key": "loss", "value": 1.0}])
    assert point.step == 0
    assert abs(point.timestamp - limits.now_ms()) < 60_000


@pytest.mark.parametrize(
    ("item", "where"),
    [
        (metric(value="nan"), "metrics[0].value"),
        (metric(value="1.5"), "metrics[0].value"),
        (metric(value=True), "metrics[0].value"),
        (metric(value=None), "metrics[0].value"),
        (metric(step="NaN"), "metrics[0].step"),
        (metric(step=1.5), "metrics[0].step"),
        (metric(timestamp="1"), "metrics[0].timestamp"),
        (metric(step=2**63), "metrics[0].step"),
        (metric(key=""), "metrics[0].key"),
        (metric(key=5), "metrics[0].key"),
        ({"key": "loss"}, "metrics[0].value"),
        ("loss", "metrics[0]"),
    ],
)
def test_clean_metrics_names_the_bad_field(item, where):
    with pytest.raises(InvalidInput) as info:
        limits.clean_metrics([item])
    assert info.value.message.startswith(where)


def test_metric_value_overflowing_float64_is_rejected():
    with pytest.raises(InvalidInput, match="float64"):
        limits.clean_metrics([metric(value=10**400)])


@pytest.mark.parametrize("key", ["../etc", "a/../b", "/abs", "a//b", "a/", "./a", "a\\b", "a\x00b", "semi;colon"])
def test_keys_must_be_clean_relative_names(key):
    with pytest.raises(InvalidInput):
        limits.validate_key(key, where="key")


@pytest.mark.parametrize("key", ["loss", "train/loss", "val-acc 1", "a.b.c", "ns:metric", "x" * 250])
def test_valid_keys(key):
    assert limits.validate_key(key, where="key") == key


def test_key_over_250_characters_names_the_limit():
    with pytest.raises(InvalidInput, match="250"):
        limits.validate_key("k" * 251, where="key")


def test_batch_counts_name_their_limit():
    with pytest.raises(InvalidInput, match="at most 1000 metrics"):
        limits.clean_metrics([metric()] * 1001)
    with pytest.raises(InvalidInput, match="at most 100 params"):
        limits.clean_params([{"key": f"p{i}", "value": "1"} for i in range(101)])
    with pytest.raises(InvalidInput, match="at most 100 tags"):
        limits.clean_tags([{"key": f"t{i}", "value": "1"} for i in range(101)])
    with pytest.raises(InvalidInput, match="1000 items in total"):
        limits.check_batch_sizes(metrics=[{}] * 950, params=[{}] * 30, tags=[{}] * 21)
    with pytest.raises(InvalidInput, match="at most 1000 metrics"):
        limits.check_batch_sizes(metrics=[{}] * 2000, params=[], tags=[])


def test_value_lengths_name_their_limit():
    with pytest.raises(InvalidInput, match="6000"):
        limits.clean_params([{"key": "p", "value": "x" * 6001}])
    with pytest.raises(InvalidInput, match="8000"):
        limits.clean_tags([{"key": "t", "value": "x" * 8001}])
    assert limits.clean_params([{"key": "p", "value": "x" * 6000}]) == {"p": "x" * 6000}
    assert limits.clean_tags([{"key": "t", "value": "x" * 8000}]) == {"t": "x" * 8000}


def test_param_value_must_be_a_string():
    with pytest.raises(InvalidInput, match=r"params\[0\]\.value"):
        limits.clean_params([{"key": "p", "value": 1}])
    with pytest.raises(InvalidInput, match="required"):
        limits.clean_params([{"key": "p"}])


def test_duplicate_param_with_other_value_is_rejected_same_value_is_fine():
    assert limits.clean_params([{"key": "p", "value": "1"}, {"key": "p", "value": "1"}]) == {"p": "1"}
    with pytest.raises(InvalidInput, match="twice"):
        limits.clean_params([{"key": "p", "value": "1"}, {"key": "p", "value": "2"}])


def test_repeated_tag_last_value_wins():
    assert limits.clean_tags([{"key": "t", "value": "1"}, {"key": "t", "value": "2"}]) == {"t": "2"}


def test_lists_are_required():
    with pytest.raises(InvalidInput, match="metrics: a list"):
        limits.clean_metrics({"key": "loss"})
    with pytest.raises(InvalidInput, match="params: a list"):
        limits.clean_params("p=1")


def test_tags_from_mapping_or_list():
    assert limits.tags_from({"a": "1"}) == {"a": "1"}
    assert limits.tags_from([{"key": "a", "value": "1"}]) == {"a": "1"}
    assert limits.tags_from(None) == {}


GOOD = {"key": "loss", "value": 0.5, "timestamp": 10, "step": 1}


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ({"value": "high"}, "metrics[2].value"),
        ({"value": True}, "metrics[2].value"),
        ({"step": 1.5}, "metrics[2].step"),
        ({"step": 2**63}, "metrics[2].step"),
        ({"timestamp": -(2**63) - 1}, "metrics[2].timestamp"),
        ({"timestamp": "10"}, "metrics[2].timestamp"),
        ({"key": "../loss"}, "metrics[2].key"),
    ],
)
def test_a_key_seen_before_in_the_batch_does_not_skip_the_other_checks(bad, where):
    """Points after a key's first one take a short path; anything unusual still gets the full check."""
    with pytest.raises(InvalidInput, match=rf"^{re.escape(where)}"):
        limits.clean_metrics([GOOD, GOOD, {**GOOD, **bad}])


def test_the_short_path_keeps_values_exactly():
    items = [{**GOOD, "value": v, "step": s} for s, v in enumerate([0.1, -0.0, math.inf, 1e308, 5e-324])]
    items.append({**GOOD, "value": 3, "step": 9})  # an int takes the full path and becomes a float
    points = limits.clean_metrics(items)
    assert [p.value for p in points] == [0.1, -0.0, math.inf, 1e308, 5e-324, 3.0]
    assert type(points[-1].value) is float
    assert [p.step for p in points] == [0, 1, 2, 3, 4, 9]
    assert points[0] == limits.MetricPoint("loss", 0.1, 10, 0)
