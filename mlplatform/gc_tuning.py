"""Garbage-collector settings for a long-running server process.

CPython's cyclic collector runs whenever allocations outnumber deallocations by ``threshold[0]`` (700 by
default) and, every so often, walks every tracked object. A server process holds hundreds of thousands of
long-lived objects (Django, models, URL patterns, templates) that never become garbage, so each full walk
cost ~80 ms here, every ~1.5 s under WebSocket fan-out: the p99 of live-event latency at 100 subscribers
was those pauses (103 ms; 32-36 ms with the settings below, bench/RESULTS.md).

``tune_gc`` moves everything alive at start-up to the permanent generation (``gc.freeze``) so collections
skip it, and raises the young-generation threshold so short-lived request garbage is collected in fewer,
cheaper passes. Reference counting still frees almost everything at once; only reference cycles wait.
"""

from __future__ import annotations

import gc
import logging
import os

logger = logging.getLogger("mlplatform.gc")

# Young generation 10 000 (CPython: 700); the older generations keep CPython's ratios (10, 10), so full
# collections still come often enough that cyclic garbage does not pile up: with (50 000, 20, 100) the
# 10-minute soak grew RSS by 49 %, with these by about as much as with no tuning at all (bench/RESULTS.md).
DEFAULT_THRESHOLDS = (10_000, 10, 10)


def thresholds_from_env(raw: str | None) -> tuple[int, int, int] | None:
    """``MLPLATFORM_GC_THRESHOLDS``: unset → defaults; ``"off"`` → leave the collector alone; ``"a,b,c"``."""
    if raw is None or not raw.strip():
        return DEFAULT_THRESHOLDS
    if raw.strip().lower() == "off":
        return None
    try:
        first, second, third = (int(part) for part in raw.split(","))
    except ValueError:
        logger.warning("MLPLATFORM_GC_THRESHOLDS=%r is not 'off' or three integers; using defaults", raw)
        return DEFAULT_THRESHOLDS
    if min(first, second, third) < 1:
        logger.warning("MLPLATFORM_GC_THRESHOLDS=%r must be positive; using defaults", raw)
        return DEFAULT_THRESHOLDS
    return first, second, third


def tune_gc(environ: dict[str, str] | os._Environ = os.environ) -> tuple[int, int, int] | None:
    """Freeze start-up objects and set the thresholds (call once, after the application is built)."""
    thresholds = thresholds_from_env(environ.get("MLPLATFORM_GC_THRESHOLDS"))
    if thresholds is None:
        return None
    gc.collect()  # start-up garbage goes now, not into the permanent generation
    gc.freeze()
    gc.set_threshold(*thresholds)
    return thresholds
