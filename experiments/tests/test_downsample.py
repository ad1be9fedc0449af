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
