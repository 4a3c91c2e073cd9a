"""What every benchmark records about a repeated measurement: runs, median, spread and load.

The benchmark scripts import this module by its plain name (``python benchmarks/<name>.py`` puts
``benchmarks/`` first on ``sys.path``). One place, so the JSON files share one shape:

``{"runs": [...], "median": m, "min": a, "max": b, "n": k}`` for every repeated figure, and
``load_average()`` (1, 5 and 15 minute averages) before and after each measurement, because the
machine the benchmarks run on is shared and a quiet machine is never assumed.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Iterable

DEFAULT_REPEATS = 3


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded to 2 decimals."""
    return [round(value, 2) for value in os.getloadavg()]


def spread(values: Iterable[float], digits: int = 3) -> dict[str, object]:
    """``runs``, ``median``, ``min``, ``max`` and ``n`` of repeated measurements.

    Raises
    ------
    ValueError
        When ``values`` is empty: a benchmark figure needs at least one run.
    """
    runs = [round(float(value), digits) for value in values]
    if not runs:
        raise ValueError("spread() needs at least one run; got none (check the --repeats value)")
    return {
        "runs": runs,
        "median": round(statistics.median(runs), digits),
        "min": min(runs),
        "max": max(runs),
        "n": len(runs),
    }


def check_repeats(repeats: int) -> int:
    """``repeats`` itself, or a ValueError naming the rule (at least 1; 3 for reported figures)."""
    if repeats < 1:
        raise ValueError(f"--repeats {repeats}: needs at least 1 (reported figures use {DEFAULT_REPEATS})")
    return repeats
