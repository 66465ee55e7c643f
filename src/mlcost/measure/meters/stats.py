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


#: A run is flagged unstable when its step-time p90 exceeds this multiple of the median ...
UNSTABLE_P90_OVER_MEDIAN = 1.5
#: ... or the coefficient of variation (stdev / mean) of its measured step times exceeds this ...
UNSTABLE_CV = 0.2
#: ... or the median of the first half of measured steps differs from the second half's by more than this
#: fraction (warm-up not over, or the machine's load changed during the run).
UNSTABLE_DRIFT = 0.2


def dispersion(times_s: Sequence[float]) -> dict[str, float | None]:
    """How spread and how steady the measured step times are.

    Returns ``step_time_p50_s``, ``step_time_p90_s`` (Units: s), ``step_time_cv`` (stdev / mean, no unit),
    ``step_time_p90_over_p50`` and ``step_time_drift`` (median of the second half of the steps / median of
    the first half − 1: negative while a run is still warming up, i.e. getting faster; None under 4 steps).
    """
    values = [float(t) for t in times_s]
    stats = summarize_times(values)
    out: dict[str, float | None] = {
        "step_time_p50_s": stats["median_s"],
        "step_time_p90_s": stats["p90_s"],
        "step_time_cv": None,
        "step_time_p90_over_p50": None,
        "step_time_drift": None,
    }
    if len(values) >= 2 and stats["mean_s"]:
        mean = float(stats["mean_s"])
        var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
        out["step_time_cv"] = math.sqrt(var) / mean
    if stats["median_s"]:
        out["step_time_p90_over_p50"] = float(stats["p90_s"] or 0.0) / float(stats["median_s"])
    if len(values) >= 4:
        half = len(values) // 2
        first = summarize_times(values[:half])["median_s"]
        second = summarize_times(values[-half:])["median_s"]
        if first:
            out["step_time_drift"] = float(second or 0.0) / float(first) - 1.0
    return out


def stability_warnings(disp: dict[str, float | None]) -> list[str]:
    """One line per reason the step times are too noisy to trust (thresholds above), else []."""
    out = []
    ratio, cv, drift = (
        disp.get("step_time_p90_over_p50"),
        disp.get("step_time_cv"),
        disp.get("step_time_drift"),
    )
    if ratio is not None and ratio > UNSTABLE_P90_OVER_MEDIAN:
        out.append(
            f"unstable step times: p90 is {ratio:.2f}× the median (threshold {UNSTABLE_P90_OVER_MEDIAN}×); "
            "the machine is busy or the run too short: compare only with intervals, or use more --steps"
        )
    if cv is not None and cv > UNSTABLE_CV:
        out.append(f"unstable step times: coefficient of variation {cv:.2f} (threshold {UNSTABLE_CV})")
    if drift is not None and abs(drift) > UNSTABLE_DRIFT:
        way = "faster" if drift < 0 else "slower"
        out.append(
            f"step times drift: the second half of the steps ran {abs(drift):.0%} {way} than the first "
            f"(threshold {UNSTABLE_DRIFT:.0%}); use more --warmup steps or a quieter machine"
        )
    return out
