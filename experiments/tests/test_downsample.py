"""LTTB downsampling (numpy, no per-point loop)."""

import numpy as np
import pytest

from experiments.downsample import lttb_indices


def test_short_series_is_returned_whole():
    assert list(lttb_indices(np.arange(5.0), np.arange(5.0), 10)) == [0, 1, 2, 3, 4]


def test_keeps_first_last_and_extremes_within_the_budget():
    x = np.arange(10_000, dtype=float)
    y = np.sin(x / 300)
    y[4321] = 100.0
    y[8765] = -100.0
    picked = lttb_indices(x, y, 200)
    assert len(picked) <= 200
    assert {0, 9999, 4321, 8765} <= set(picked.tolist())
    assert np.all(np.diff(picked) > 0)


def test_picks_the_peak_of_each_bucket_like_lttb():
    x = np.arange(1000, dtype=float)
    y = np.zeros(1000)
    spikes = [100, 300, 500, 700, 900]
    y[spikes] = [5.0, 6.0, 7.0, 8.0, 9.0]
    picked = set(lttb_indices(x, y, 40).tolist())
    assert set(spikes) <= picked


def test_non_finite_values_do_not_crowd_out_real_points():
    x = np.arange(1000, dtype=float)
    y = np.linspace(0, 1, 1000)
    y[::7] = np.nan
    y[500] = np.inf
    picked = lttb_indices(x, y, 50)
    assert len(picked) <= 50
    assert np.isfinite(y[picked[1:-1]]).mean() > 0.9


def test_all_nan_series_still_returns_a_bounded_selection():
    picked = lttb_indices(np.arange(100.0), np.full(100, np.nan), 10)
    assert 2 <= len(picked) <= 10 and picked[0] == 0 and picked[-1] == 99


def test_too_small_budget_is_refused():
    with pytest.raises(ValueError):
        lttb_indices(np.arange(100.0), np.arange(100.0), 4)


def test_repeated_x_values_are_fine():
    x = np.repeat(np.arange(100.0), 3)
    y = np.random.default_rng(1).normal(size=300)
    picked = lttb_indices(x, y, 30)
    assert len(picked) <= 30 and np.all(np.diff(picked) > 0)


def reference_lttb(x, y, max_points):
    """Textbook LTTB, point by point, over the same buckets; plus first/last and the finite min and max."""
    n = len(x)
    finite = np.isfinite(y)
    y = np.where(finite, y, 0.0)
    n_buckets = max_points - 4
    starts = np.linspace(1, n - 1, n_buckets + 1).astype(np.int64)[:-1]
    ends = np.append(starts[1:], n - 1)
    means = [(x[s:e].mean(), y[s:e].mean()) for s, e in zip(starts, ends, strict=True)] + [(x[-1], y[-1])]
    picks, a = [], 0
    for bucket, (start, end) in enumerate(zip(starts, ends, strict=True)):
        cx, cy = means[bucket + 1]
        best, chosen = -2.0, start
        for p in range(start, end):
            area = abs((x[a] - cx) * (y[p] - y[a]) - (x[a] - x[p]) * (cy - y[a])) if finite[p] else -1.0
            if area > best:
                best, chosen = area, p
        picks.append(chosen)
        a = chosen
    keep = {0, n - 1, *picks}
    if finite.any():
        indices = np.flatnonzero(finite)
        keep |= {int(indices[np.argmin(y[finite])]), int(indices[np.argmax(y[finite])])}
    return sorted(keep)


@pytest.mark.parametrize("seed", range(12))
def test_picks_exactly_what_textbook_lttb_picks(seed):
    # A random walk, white noise (where a vectorised approximation disagrees with LTTB on about half the
    # buckets), a noisy sine and a spiky series; uneven steps, NaN and inf mixed in.
    rng = np.random.default_rng(seed)
    n = int(rng.integers(300, 3000))
    x = np.cumsum(rng.integers(0, 3, n)).astype(float)
    y = [
        np.cumsum(rng.normal(size=n)),
        rng.normal(size=n),
        np.sin(x / 50) + 0.1 * rng.normal(size=n),
        0.01 * rng.normal(size=n) + (rng.random(n) < 0.01) * 10,
    ][seed % 4]
    if seed % 3 == 0:
        y[rng.integers(0, n, 10)] = np.nan
        y[rng.integers(0, n, 3)] = np.inf
    max_points = int(rng.integers(5, 300))
    assert lttb_indices(x, y, max_points).tolist() == reference_lttb(x, y, max_points)


def test_wide_noisy_buckets_finish_bucket_by_bucket_and_still_match(monkeypatch):
    # With no room for rounds, every bucket left unsettled is settled in order.
    monkeypatch.setattr("experiments.downsample.ROUND_WORK_LIMIT", 0)
    rng = np.random.default_rng(7)
    x = np.arange(4000.0)
    y = rng.normal(size=4000)
    assert lttb_indices(x, y, 40).tolist() == reference_lttb(x, y, 40)


def test_values_near_the_float64_limit_do_not_overflow():
    x = np.arange(1000.0)
    y = np.random.default_rng(3).normal(size=1000)
    y[::3], y[1::3] = 1.7e308, -1.7e308
    with np.errstate(over="raise", invalid="raise"):
        picked = lttb_indices(x, y, 50)
    assert len(picked) <= 50 and picked[0] == 0 and picked[-1] == 999
    assert picked.tolist() == reference_lttb(x, np.ldexp(y, -1024), 50)  # the picks of the exactly scaled series
