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

from mlcost.catalog.schema import Device, EfficiencyProfile, EngineProfile
from mlcost.measure.serve_load import IterationTiming, LoadRequest
from mlcost.spec import ModelSpec

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


def iteration_arrays(iterations: Sequence[IterationTiming]) -> dict[str, np.ndarray]:
    """The aggregates :func:`mlcost.estimate.serve_step.step_parts` takes, one array entry per iteration."""
    return {
        "prefill_tokens": np.array([i.prefill_tokens for i in iterations], dtype=np.float64),
        "prefill_seqs": np.array([i.prefill_seqs for i in iterations], dtype=np.float64),
        "prefill_pairs": np.array([i.prefill_pairs for i in iterations], dtype=np.float64),
        "prefill_ctx_tokens": np.array([i.prefill_ctx_tokens for i in iterations], dtype=np.float64),
        "decode_seqs": np.array([i.decode_seqs for i in iterations], dtype=np.float64),
        "decode_ctx_tokens": np.array([i.decode_ctx_tokens for i in iterations], dtype=np.float64),
    }


def engine_predictor(
    model: ModelSpec,
    device: Device,
    profile: EfficiencyProfile,
    base: EngineProfile,
    iterations: Sequence[IterationTiming],
    *,
    precision: str = "fp32",
) -> Callable[[dict[str, float]], np.ndarray]:
    """``predict(params)``: every iteration's duration under ``base`` with ``params`` replaced, by the
    simulator's per-iteration cost (:func:`mlcost.estimate.serve_step.step_time_s`). Units: s."""
    from mlcost.estimate.serve_step import replica_coefficients, step_time_s

    agg = iteration_arrays(iterations)

    def predict(params: dict[str, float]) -> np.ndarray:
        c = replica_coefficients(
            model,
            device,
            profile,
            base.replace(**params),
            tp=1,
            weight_precision=precision,
            kv_precision=precision,
        )
        return np.asarray(step_time_s(c, **agg), dtype=np.float64)

    return predict


#: The hf engine's free parameters on a CPU: starting values and bounds (units as named).
HF_CPU_START: dict[str, float] = {
    "iteration_overhead_s": 5e-3,
    "per_seq_overhead_s": 5e-4,
    "matmul_eff_scale": 1.0,
    "decode_mem_bw_eff": 0.8,
}
HF_CPU_BOUNDS: dict[str, tuple[float, float]] = {
    "iteration_overhead_s": (1e-5, 1.0),
    "per_seq_overhead_s": (1e-6, 0.1),
    "matmul_eff_scale": (0.05, 2.0),
    "decode_mem_bw_eff": (0.05, 1.0),
}


def fit_engine(
    iterations: Sequence[IterationTiming],
    predict: Callable[[dict[str, float]], np.ndarray],
    start: dict[str, float] | None = None,
    bounds: dict[str, tuple[float, float]] | None = None,
) -> EngineFit:
    """Least squares in log space (robust ``soft_l1`` loss: a neighbour's hiccup is one outlier, not a
    trend) of ``predict(params)`` against the measured iteration durations. ``start`` names the free
    parameters and their starting values, ``bounds`` their ranges (> 0); both default to the hf CPU ones."""
    from scipy.optimize import least_squares

    start = dict(start or HF_CPU_START)
    bounds = dict(bounds or HF_CPU_BOUNDS)
    its = [i for i in iterations if i.seqs > 0 and i.duration_s > 0]
    if len(its) != len(iterations):
        raise ValueError("fit_engine needs the iterations predict() was built on, all non-empty")
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
        return np.asarray(np.log(np.maximum(predict(params_of(x)), 1e-12) / measured))

    sol = least_squares(residuals, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.1)
    best = params_of(sol.x)
    pred = predict(best)
    return EngineFit(
        params=best,
        iterations=len(its),
        median_abs_rel=float(np.median(np.abs(pred / measured - 1.0))),
        total_time_rel=float(pred.sum() / measured.sum() - 1.0),
    )
