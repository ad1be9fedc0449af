"""history_points: pages and downsampled series as plain tuples (binary COPY into numpy on PostgreSQL)."""

import math

import numpy as np
import pytest

from experiments import selectors, services
from experiments.downsample import lttb_indices


def log(user, run, points, key="loss"):
    services.log_batch(
        user=user, run=run, metrics=[{"key": key, "value": v, "step": s, "timestamp": t} for s, t, v in points]
    )


def same(actual, expected):
    assert len(actual) == len(expected)
    for (step, ts, value), (e_step, e_ts, e_value) in zip(actual, expected, strict=True):
        assert (step, ts) == (e_step, e_ts)
        assert (math.isnan(value) and math.isnan(e_value)) or value == e_value


@pytest.fixture
def series(editor, run):
    """300 points with NaN, ±inf, an int64-sized timestamp and a tie on one step."""
    points = [(s, 1000 + s, math.sin(s / 7)) for s in range(300)]
    points[10] = (10, 1010, math.nan)
    points[20] = (20, 1020, math.inf)
    points[30] = (30, 1030, -math.inf)
    points[40] = (40, 2**62, 0.1)
    log(editor, run, points[:150])
    log(editor, run, [*points[150:], (299, 1299, 5.0)])  # a second point on step 299, logged later
    log(editor, run, [(5, 1, 1.0)], key="other")
    return [*points, (299, 1299, 5.0)]


def test_full_series_comes_back_exactly_in_step_order(run, series):
    points, token = selectors.history_points(run=run, key="loss", max_points=10_000)
    assert token is None
    same(points, series)


def test_downsampled_series_is_lttb_of_the_full_series(run, series):
    points, _ = selectors.history_points(run=run, key="loss", max_points=50)
    steps = np.array([p[0] for p in series], dtype=float)
    values = np.array([p[2] for p in series], dtype=float)
    same(points, [series[i] for i in lttb_indices(steps, values, 50)])


def test_downsample_since_step_and_unknown_key(run, series):
    points, _ = selectors.history_points(run=run, key="loss", since_step=280, max_points=10)
    assert all(step > 280 for step, _, _ in points) and points[-1] == (299, 1299, 5.0)
    assert selectors.history_points(run=run, key="nope", max_points=10) == ([], None)


def test_pages_follow_tokens_to_the_end(run, series):
    collected, token, pages = [], None, 0
    while True:
        points, token = selectors.history_points(run=run, key="loss", page_size=70, page_token=token)
        collected.extend(points)
        pages += 1
        if token is None:
            break
    assert pages == 5
    same(collected, series)
    since, _ = selectors.history_points(run=run, key="loss", since_step=297, page_size=70)
    same(since, series[-3:])


def test_metric_history_keeps_its_dict_shape(run, series):
    history = selectors.metric_history(run=run, key="loss", page_size=2)
    assert history["key"] == "loss"
    assert history["points"] == [
        {"step": 0, "timestamp": 1000, "value": 0.0},
        {"step": 1, "timestamp": 1001, "value": math.sin(1 / 7)},
    ]
    assert history["next_page_token"]


def test_invalid_since_step(run):
    with pytest.raises(selectors.InvalidInput):
        selectors.history_points(run=run, key="loss", since_step="3")


def test_bulk_history_matches_each_series_read_alone(editor, run, series, experiment, django_assert_num_queries):
    other = services.run_create(user=editor, experiment=experiment)
    log(editor, other, [(s, 5000 + s, -float(s)) for s in range(40)], key="loss")
    log(editor, other, [(1, 1, math.inf)], key="acc")
    for max_points in (None, 20):
        with django_assert_num_queries(1):
            bulk = selectors.metric_history_bulk(runs=[run, other], keys=["loss", "acc", "loss"], max_points=max_points)
        assert [(entry["run_id"], entry["key"]) for entry in bulk] == [
            (r.run_uuid, k) for r in (run, other) for k in ("loss", "acc", "loss")
        ]
        for entry, (r, k) in zip(bulk, [(r, k) for r in (run, other) for k in ("loss", "acc", "loss")], strict=True):
            alone, _ = selectors.history_points(run=r, key=k, max_points=max_points or 10_000)
            same([(p["step"], p["timestamp"], p["value"]) for p in entry["points"]], alone)


def test_a_downsampled_read_is_served_from_the_cache_until_the_run_is_written(
    editor, run, series, django_assert_num_queries
):
    first, _ = selectors.history_points(run=run, key="loss", max_points=50)
    with django_assert_num_queries(0):  # the same answer, without reading the series again
        again, _ = selectors.history_points(run=run, key="loss", max_points=50)
    assert again == first
    log(editor, run, [(400, 1400, 9.0)])  # any write bumps the run's seq: the next read sees the new point
    fresh, _ = selectors.history_points(run=run, key="loss", max_points=50)
    assert fresh[-1] == (400, 1400, 9.0)
    other, _ = selectors.history_points(run=run, key="loss", max_points=40)  # each size is its own answer
    assert 30 < len(other) <= 40 < len(fresh)


def test_downsampling_still_answers_when_the_cache_is_down(run, series, settings):
    settings.CACHES = {"default": {"BACKEND": "mlplatform.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
    points, _ = selectors.history_points(run=run, key="loss", max_points=50)
    steps = np.array([p[0] for p in series], dtype=float)
    values = np.array([p[2] for p in series], dtype=float)
    same(points, [series[i] for i in lttb_indices(steps, values, 50)])
