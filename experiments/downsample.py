"""Largest-Triangle-Three-Buckets downsampling in numpy: exactly LTTB's picks, with no per-point Python loop.

LTTB walks the buckets in order and anchors each bucket's triangle on the point picked in the previous
bucket (the third corner is the next bucket's mean). That dependency is what makes it sequential. Here:

1. every bucket is solved at once, anchored on the previous bucket's mean (a first guess);
2. every bucket whose anchor is not the point now picked in the bucket before it is solved again, all
   at once, until none is left. The first bucket's anchor (the first point) is always right, so the
   buckets before the first wrongly anchored one hold LTTB's own picks, each round settles at least one
   more, and when none is wrongly anchored the picks are exactly LTTB's;
3. on noisy series with wide buckets the rounds can go on for hundreds of passes over the data; once
   they have touched ``ROUND_WORK_LIMIT`` times the series, the remaining buckets are settled in bucket
   order (one numpy call per bucket that still needs it; a bucket whose anchor is already right is
   skipped).

Points are never visited one by one in Python. The first and last points and the global minimum and
maximum are always kept (the buckets leave room for them). Non-finite values (NaN, ±inf) are only picked
for a bucket that holds nothing else. Values near the float64 limit do not overflow: areas are computed
on the values scaled by a power of two (exact, so the picks are the same as unscaled).
"""

from __future__ import annotations

import numpy as np

MIN_POINTS = 5
# Rounds stop (and buckets are settled in order) once they have touched this many times the series.
ROUND_WORK_LIMIT = 3


def _solve(
    x: np.ndarray,
    y: np.ndarray,
    eligible: np.ndarray,
    starts: np.ndarray,
    widths: np.ndarray,
    ax: np.ndarray,
    ay: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
) -> np.ndarray:
    """For each given bucket (``starts``/``widths``, anchor A, third corner C), the index of its largest triangle.

    Buckets are contiguous runs of points, so the segmented maximum and the first position reaching it are
    O(points) with no sort; on ties the first point wins, as ``np.argmax`` in a bucket-by-bucket LTTB.
    """
    offsets = np.cumsum(widths) - widths
    segment = np.repeat(np.arange(len(widths)), widths)
    index = np.arange(int(widths.sum())) - offsets[segment] + starts[segment]
    a_x, a_y, c_x, c_y = ax[segment], ay[segment], cx[segment], cy[segment]
    area = np.abs((a_x - c_x) * (y[index] - a_y) - (a_x - x[index]) * (c_y - a_y))
    area = np.where(eligible[index], area, -1.0)
    largest = np.maximum.reduceat(area, offsets)
    hits = np.flatnonzero(area == largest[segment])
    first = np.ones(len(hits), dtype=bool)
    first[1:] = segment[hits][1:] != segment[hits][:-1]
    return index[hits[first]]


def _scaled(y: np.ndarray) -> np.ndarray:
    """``y`` scaled into [-1, 1) by a power of two (exact), so triangle areas cannot overflow."""
    largest = float(np.max(np.abs(y))) if len(y) else 0.0
    if largest == 0.0:
        return y
    _, exponent = np.frexp(largest)
    return np.ldexp(y, -int(exponent))


def lttb_indices(x: np.ndarray, y: np.ndarray, max_points: int) -> np.ndarray:
    """Sorted indices of at most ``max_points`` points of the series that keep its visual shape."""
    n = len(x)
    if n <= max_points:
        return np.arange(n)
    if max_points < MIN_POINTS:
        raise ValueError(f"max_points must be at least {MIN_POINTS}")
    x = np.asarray(x, dtype=float)
    finite = np.isfinite(y)
    y = _scaled(np.where(finite, y, 0.0).astype(float))  # placeholder 0 keeps means finite; never picked
    n_buckets = max_points - 4  # room for first, last, min and max
    starts = np.linspace(1, n - 1, n_buckets + 1).astype(np.int64)[:-1]
    widths = np.diff(np.append(starts, n - 1))
    mean_x = np.add.reduceat(x[1 : n - 1], starts - 1) / widths
    mean_y = np.add.reduceat(y[1 : n - 1], starts - 1) / widths
    cx = np.append(mean_x[1:], x[-1])
    cy = np.append(mean_y[1:], y[-1])
    # 1. First guess: every bucket anchored on the previous bucket's mean (the first on the first point).
    picks = _solve(x, y, finite, starts, widths, np.append(x[0], mean_x[:-1]), np.append(y[0], mean_y[:-1]), cx, cy)
    anchored_on = np.full(n_buckets, -1, dtype=np.int64)  # the point each pick was computed against (-1: a mean)
    anchored_on[0] = 0
    # 2. Rounds: re-solve, all at once, every bucket whose anchor is not the pick before it.
    work = n
    while True:
        anchors = np.append(0, picks[:-1])
        todo = np.flatnonzero(anchored_on != anchors)
        if not len(todo) or work > ROUND_WORK_LIMIT * n:
            break
        a = anchors[todo]
        picks[todo] = _solve(x, y, finite, starts[todo], widths[todo], x[a], y[a], cx[todo], cy[todo])
        anchored_on[todo] = a
        work += int(widths[todo].sum())
    # 3. What the rounds left: bucket by bucket from the first unsettled one (those before it are settled).
    if len(todo):
        for bucket in range(int(todo[0]), n_buckets):
            anchor = int(picks[bucket - 1])
            if anchored_on[bucket] == anchor:
                continue
            start, end = int(starts[bucket]), int(starts[bucket] + widths[bucket])
            a_x, a_y, c_x, c_y = x[anchor], y[anchor], cx[bucket], cy[bucket]
            area = np.abs((a_x - c_x) * (y[start:end] - a_y) - (a_x - x[start:end]) * (c_y - a_y))
            area = np.where(finite[start:end], area, -1.0)
            picks[bucket] = start + int(np.argmax(area))
            anchored_on[bucket] = anchor
    keep = [np.array([0, n - 1]), picks]
    if finite.any():
        finite_idx = np.flatnonzero(finite)
        keep.append(finite_idx[[np.argmin(y[finite]), np.argmax(y[finite])]])
    return np.unique(np.concatenate(keep))
