"""Fit a serving engine's profile on this host from a short measured calibration load.

The calibration load (:func:`calibration_requests`) is never a workload that is scored afterwards: bursts
of 1, 2, 4, 8 and 16 simultaneous requests (each burst drained before the next: clean decode iterations at
each batch size, prefill chunks up to the token budget) followed by a Poisson stretch (prefills mixed into
running decodes). The engine's logged iterations (:class:`mlcost.measure.serve_load.IterationTiming`:
duration, sequences, prefill tokens, decode sequences, context tokens) are the data.

The prediction inside the fit is the simulator's own per-iteration cost (``step_time_s(profile, it)``,
the function the simulator calls), never a separate formula: the free engine parameters minimise the
squared log-ratios of predicted to measured iteration time (``scipy.optimize.least_squares``, bounded).
One profile per host: the fit is saved with the host's calibration, never per workload.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlcost.measure.serve_load import IterationTiming, LoadRequest

#: Burst sizes of the calibration load (simultaneous requests).
BURSTS: tuple[int, ...] = (1, 2, 4, 8, 16)


def calibration_requests(
    *,
    prompt_len: int,
    output_len: int,
    burst_gap_s: float,
    poisson_rate_per_s: float,
    poisson_requests: int,
    seed: int = 1,
) -> list[LoadRequest]:
    """Bursts of :data:`BURSTS` requests ``burst_gap_s`` apart (long enough to drain each), then
    ``poisson_requests`` Poisson arrivals at ``poisson_rate_per_s`` (seeded)."""
    out: list[LoadRequest] = []
    t = 0.0
    for k in BURSTS:
        out += [LoadRequest(arrival_s=t, prompt_len=prompt_len, output_len=output_len) for _ in range(k)]
        t += burst_gap_s
    gaps = np.random.default_rng(seed).exponential(1.0 / poisson_rate_per_s, poisson_requests)
    out += [
        LoadRequest(arrival_s=t + float(a), prompt_len=prompt_len, output_len=output_len)
        for a in np.cumsum(gaps)
    ]
    return out


@dataclass(frozen=True)
class EngineFit:
    """Fitted engine parameters and how well the per-iteration cost reproduces the calibration load.

    Attributes:
        params: fitted value of each free parameter (units as the parameter's name says).
        iterations: iterations fitted.
        median_abs_rel: median |predicted / measured − 1| of iteration time.
        total_time_rel: Σ predicted / Σ measured iteration time − 1.
    """

    params: dict[str, float]
    iterations: int
    median_abs_rel: float
    total_time_rel: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": dict(self.params),
            "iterations": self.iterations,
            "median_abs_rel": self.median_abs_rel,
            "total_time_rel": self.total_time_rel,
        }


def fit_engine(
    iterations: Sequence[IterationTiming],
    predict_s: Callable[[dict[str, float], IterationTiming], float],
    start: dict[str, float],
    bounds: dict[str, tuple[float, float]],
) -> EngineFit:
    """Least squares in log space of ``predict_s(params, iteration)`` against the measured durations.

    ``start`` names the free parameters and their starting values, ``bounds`` their ranges (> 0)."""
    from scipy.optimize import least_squares

    its = [i for i in iterations if i.seqs > 0 and i.duration_s > 0]
    if len(its) < len(start) + 2:
        raise ValueError(f"{len(its)} iterations are too few to fit {len(start)} engine parameters")
    names = list(start)
    measured = np.array([i.duration_s for i in its])
    lo = np.log([bounds[n][0] for n in names])
    hi = np.log([bounds[n][1] for n in names])
    x0 = np.clip(np.log([start[n] for n in names]), lo + 1e-9, hi - 1e-9)

    def params_of(x: np.ndarray) -> dict[str, float]:
        return {n: float(v) for n, v in zip(names, np.exp(x), strict=True)}

    def residuals(x: np.ndarray) -> np.ndarray:
        p = params_of(x)
        pred = np.array([predict_s(p, i) for i in its])
        return np.asarray(np.log(np.maximum(pred, 1e-12) / measured))

    sol = least_squares(residuals, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.1)
    best = params_of(sol.x)
    pred = np.array([predict_s(best, i) for i in its])
    return EngineFit(
        params=best,
        iterations=len(its),
        median_abs_rel=float(np.median(np.abs(pred / measured - 1.0))),
        total_time_rel=float(pred.sum() / measured.sum() - 1.0),
    )
