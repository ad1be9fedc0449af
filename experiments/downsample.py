"""Largest-Triangle-Three-Buckets downsampling in numpy, with no per-point Python loop.

Classic LTTB walks the buckets in order, anchoring each bucket's triangle on the point picked in the
previous bucket; that dependency forces a loop. Here every bucket is solved at once: a first pass
anchors on the previous bucket's mean (LTTB's own choice for the *next* bucket), a second pass
re-anchors on the points the first pass picked. Two vectorised passes pick the same peaks as LTTB in
practice. The first and last points and the global minimum and maximum are always kept.
Non-finite values (NaN, ±inf) are only picked for a bucket that holds nothing else.
"""

from __future__ import annotations

import numpy as np

MIN_POINTS = 5


def _pick(
    x: np.ndarray,
    y: np.ndarray,
    eligible: np.ndarray,
    starts: np.ndarray,
    bucket: np.ndarray,
    ax: np.ndarray,
    ay: np.ndarray,
) -> np.ndarray:
    """For every bucket at once, the index of the point making the largest triangle with A and C."""
    n = len(x)
    widths = np.diff(np.append(starts, n - 1))
    mean_x = np.add.reduceat(x[1 : n - 1], starts - 1) / widths
    mean_y = np.add.reduceat(y[1 : n - 1], starts - 1) / widths
    cx = np.append(mean_x[1:], x[-1])
    cy = np.append(mean_y[1:], y[-1])
    inner_x, inner_y = x[1 : n - 1], y[1 : n - 1]
    a_x, a_y, c_x, c_y = ax[bucket], ay[bucket], cx[bucket], cy[bucket]
    area = np.abs((a_x - c_x) * (inner_y - a_y) - (a_x - inner_x) * (c_y - a_y))
    area = np.where(eligible[1 : n - 1], area, -1.0)
    # Largest area per bucket (the first one on ties). Buckets are contiguous runs, so a segmented
    # max and the first position reaching it are O(n), with no sort.
    largest = np.maximum.reduceat(area, starts - 1)
    hits = np.flatnonzero(area == largest[bucket])
    first = np.ones(len(hits), dtype=bool)
    first[1:] = bucket[hits][1:] != bucket[hits][:-1]
    return hits[first] + 1


def lttb_indices(x: np.ndarray, y: np.ndarray, max_points: int) -> np.ndarray:
    """Sorted indices of at most ``max_points`` points of the series that keep its visual shape."""
    n = len(x)
    if n <= max_points:
        return np.arange(n)
    if max_points < MIN_POINTS:
        raise ValueError(f"max_points must be at least {MIN_POINTS}")
    x = np.asarray(x, dtype=float)
    finite = np.isfinite(y)
    y = np.where(finite, y, 0.0).astype(float)  # placeholder so means stay finite; never picked
    n_buckets = max_points - 4  # room for first, last, min and max
    starts = np.linspace(1, n - 1, n_buckets + 1).astype(np.int64)[:-1]
    widths = np.diff(np.append(starts, n - 1))
    bucket = np.repeat(np.arange(n_buckets), widths)
    mean_x = np.add.reduceat(x[1 : n - 1], starts - 1) / widths
    mean_y = np.add.reduceat(y[1 : n - 1], starts - 1) / widths
    ax = np.append(x[0], mean_x[:-1])
    ay = np.append(y[0], mean_y[:-1])
    picks = _pick(x, y, finite, starts, bucket, ax, ay)
    # Second pass: anchor each bucket on the point the first pass picked in the previous bucket.
    ax = np.append(x[0], x[picks[:-1]])
    ay = np.append(y[0], y[picks[:-1]])
    picks = _pick(x, y, finite, starts, bucket, ax, ay)
    keep = [np.array([0, n - 1]), picks]
    if finite.any():
        finite_idx = np.flatnonzero(finite)
        keep.append(finite_idx[[np.argmin(y[finite]), np.argmax(y[finite])]])
    return np.unique(np.concatenate(keep))
