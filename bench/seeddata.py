"""The runs the search workload seeds, identical whichever way they are written (no third-party imports).

Run ``i`` has metrics ``acc`` and ``loss`` (step 0), params ``lr`` and ``batch_size`` and a ``squad`` tag.
"""

from __future__ import annotations

import random

BASE_TIMESTAMP = 1_700_000_000_000
LEARNING_RATES = ("0.1", "0.01", "0.001", "0.0001")
SEARCH_FILTER = "metrics.acc > 0.5 and params.lr = '0.01'"
SEARCH_ORDER = ["metrics.acc DESC"]


def seed_values(index: int) -> tuple[float, float, str, str]:
    """(acc, loss, lr, batch_size) of seeded run ``index``."""
    rng = random.Random(index)
    return rng.random(), rng.random() * 3, LEARNING_RATES[index % len(LEARNING_RATES)], str(2 ** (4 + index % 5))


def expected_matches(count: int) -> list[float]:
    """The ``acc`` values of the runs matching :data:`SEARCH_FILTER`, best first."""
    matches = []
    for i in range(count):
        acc, _loss, lr, _batch = seed_values(i)
        if acc > 0.5 and lr == "0.01":
            matches.append(acc)
    return sorted(matches, reverse=True)
