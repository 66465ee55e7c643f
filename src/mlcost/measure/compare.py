"""How sure a comparison of two measured runs is: the speed-up of a strategy over the baseline with a
95% bootstrap confidence interval, and a verdict only when the interval supports one.

Speed-up = tokens/s of the strategy / tokens/s of the baseline = (tokens per step / median step time)
ratio. The interval resamples each run's measured step times with replacement (``n_boot`` times), takes
the medians' ratio each time and keeps the central 95%. Steps of several interleaved repeats of a run are
pooled. A bootstrap over steps sees the noise inside each run; a machine that changes speed between runs
shows up as drift and dispersion warnings on the runs themselves (:mod:`mlcost.measure.meters.stats`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

#: Confidence level of the speed-up interval.
CONFIDENCE = 0.95
#: Bootstrap resamples.
N_BOOT = 2000

VERDICTS = ("faster", "slower", "no clear difference")


@dataclass(frozen=True)
class SpeedupInterval:
    """Speed-up of a strategy over the baseline (>1 = faster), with its confidence interval.

    Attributes:
        speedup: point estimate (ratio of medians). No unit.
        low / high: bounds of the ``confidence`` interval. No unit.
        confidence: e.g. 0.95.
        verdict: ``faster`` (low > 1), ``slower`` (high < 1) or ``no clear difference``.
        method: how the interval was computed.
        steps: measured steps behind each side (strategy, baseline).
    """

    speedup: float
    low: float
    high: float
    confidence: float
    verdict: str
    method: str
    steps: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def speedup_interval(
    times_s: Sequence[float],
    tokens_per_step: float,
    base_times_s: Sequence[float],
    base_tokens_per_step: float,
    *,
    n_boot: int = N_BOOT,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> SpeedupInterval | None:
    """The speed-up and its bootstrap interval; None when either run has no measured step."""
    import numpy as np

    a = np.asarray(list(times_s), dtype=np.float64)
    b = np.asarray(list(base_times_s), dtype=np.float64)
    if a.size == 0 or b.size == 0 or tokens_per_step <= 0 or base_tokens_per_step <= 0:
        return None
    scale = tokens_per_step / base_tokens_per_step
    point = scale * float(np.median(b)) / float(np.median(a))
    rng = np.random.default_rng(seed)
    med_a = np.median(a[rng.integers(0, a.size, size=(n_boot, a.size))], axis=1)
    med_b = np.median(b[rng.integers(0, b.size, size=(n_boot, b.size))], axis=1)
    ratios = scale * med_b / med_a
    tail = (1.0 - confidence) / 2.0
    low, high = (float(x) for x in np.quantile(ratios, [tail, 1.0 - tail]))
    low, high = min(low, point), max(high, point)
    verdict = "faster" if low > 1.0 else "slower" if high < 1.0 else "no clear difference"
    method = f"bootstrap of the median step time over steps ({n_boot} resamples, {confidence:.0%})"
    return SpeedupInterval(point, low, high, confidence, verdict, method, (int(a.size), int(b.size)))


def interval_of(metrics: dict[str, Any], baseline: dict[str, Any]) -> SpeedupInterval | None:
    """:func:`speedup_interval` from two runs' metrics (``step_times_s``, ``tokens_per_step``)."""
    return speedup_interval(
        metrics.get("step_times_s") or [],
        float(metrics.get("tokens_per_step") or 0.0),
        baseline.get("step_times_s") or [],
        float(baseline.get("tokens_per_step") or 0.0),
    )


def pooled(records: Sequence[Any]) -> dict[str, Any]:
    """Metrics of interleaved repeats of one strategy, their measured steps pooled."""
    first = dict(records[0].metrics)
    if len(records) > 1:
        first["step_times_s"] = [t for r in records for t in (r.metrics.get("step_times_s") or [])]
    return first
