"""Summary statistics of step times."""

from __future__ import annotations

import math
from collections.abc import Sequence


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (numpy's default 'linear' method) of already sorted values."""
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize_times(times_s: Sequence[float]) -> dict[str, float | int | None]:
    """Median, 90th percentile, mean and minimum of step times.

    Returns a dict with ``median_s``, ``p90_s``, ``mean_s``, ``min_s`` (Units: s; ``None`` when there are
    no steps) and ``n`` (number of steps).
    """
    values = sorted(float(t) for t in times_s)
    if not values:
        return {"median_s": None, "p90_s": None, "mean_s": None, "min_s": None, "n": 0}
    return {
        "median_s": _quantile(values, 0.5),
        "p90_s": _quantile(values, 0.9),
        "mean_s": sum(values) / len(values),
        "min_s": values[0],
        "n": len(values),
    }
