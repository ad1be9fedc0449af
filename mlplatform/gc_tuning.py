"""Garbage-collector settings for a long-running server process.

CPython's cyclic collector runs whenever allocations outnumber deallocations by ``threshold[0]`` (700 by
default) and, every so often, walks every tracked object. A server process holds hundreds of thousands of
long-lived objects (Django, models, URL patterns, templates) that never become garbage, so each full walk
cost ~80 ms here, every ~1.5 s under WebSocket fan-out: the p99 of live-event latency at 100 subscribers
was those pauses (103 ms; 43-49 ms once start-up objects are frozen, bench/RESULTS.md).

``tune_gc`` moves everything alive at start-up to the permanent generation (``gc.freeze``) so collections
skip it. The thresholds stay CPython's unless ``MLPLATFORM_GC_THRESHOLDS`` sets them: a larger young
generation cut the latency further (p99 27-36 ms) but let the server's memory grow faster in soaks (up to
+49 % in 10 minutes with ``50000,20,100``, +22 % in a 60 s CI soak with ``10000,10,10``), so it is opt-in.
"""

from __future__ import annotations

import gc
import logging
import os

logger = logging.getLogger("mlplatform.gc")

OFF = "off"


def thresholds_from_env(raw: str | None) -> tuple[int, int, int] | str | None:
    """``MLPLATFORM_GC_THRESHOLDS``: unset → None (freeze only); ``"off"`` → OFF (no tuning); ``"a,b,c"``."""
    if raw is None or not raw.strip():
        return None
    if raw.strip().lower() == OFF:
        return OFF
    try:
        first, second, third = (int(part) for part in raw.split(","))
    except ValueError:
        logger.warning("MLPLATFORM_GC_THRESHOLDS=%r is not 'off' or three integers; ignored", raw)
        return None
    if min(first, second, third) < 1:
        logger.warning("MLPLATFORM_GC_THRESHOLDS=%r must be positive; ignored", raw)
        return None
    return first, second, third


def tune_gc(environ: dict[str, str] | os._Environ = os.environ) -> bool:
    """Freeze start-up objects (and set thresholds when configured); False when tuning is off."""
    thresholds = thresholds_from_env(environ.get("MLPLATFORM_GC_THRESHOLDS"))
    if thresholds == OFF:
        return False
    gc.collect()  # start-up garbage goes now, not into the permanent generation
    gc.freeze()
    if thresholds is not None:
        gc.set_threshold(*thresholds)
    return True
