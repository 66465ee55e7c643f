"""Fit a serving engine's profile on this host from a short measured calibration load.

The calibration load (:func:`calibrate_hf_engine`) is never a workload that is scored afterwards:

1. bursts of 1, 2, 4, 8 and 16 simultaneous requests, each drained before the next (clean decode
   iterations at each batch size; prefill chunks up to the token budget); a first fit on them gives the
   simulated capacity of this workload;
2. a Poisson stretch at :data:`CAL_LOAD_FRACTION` of that capacity with its own seed (prefills mixed into
   running decodes, as under real traffic).

The engine's logged iterations (:class:`mlcost.measure.serve_load.IterationTiming`: duration, sequences,
prefill tokens and pairs, decode sequences, contexts) are the data. The prediction inside the fit is the
simulator's own per-iteration cost (:func:`mlcost.estimate.serve_step.step_time_s` on
:func:`~mlcost.estimate.serve_step.replica_coefficients`), never a separate formula: the free engine
parameters (:data:`HF_CPU_START`) minimise the squared log-ratios of predicted to measured iteration time
(``scipy.optimize.least_squares``, bounded, robust loss). One profile per host: ``mlcost calibrate --serve``
saves it with the host's calibration, never per workload.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlcost.catalog.schema import Device, EfficiencyProfile, EngineProfile
from mlcost.measure.serve_load import (
    EngineSettings,
    IterationTiming,
    LoadRequest,
    LoadResult,
    poisson_requests,
    simulate_load,
)
from mlcost.spec import ModelSpec

#: The model the calibration load serves: Llama-style, ~69 M parameters, fp32, random weights (values do
#: not change timing). Its ~277 MB of weights are ~8× a 32 MiB last-level cache, so decode streams them
#: from memory, as real models' decode does.
CALIBRATION_MODEL = ModelSpec(
    name="cb-llama-69m",
    n_layers=8,
    d_model=768,
    n_heads=12,
    d_ff=2048,
    vocab_size=8192,
    max_seq_len=1024,
    mlp="swiglu",
    norm="rmsnorm",
    position="rope",
    source="mlcost.calibrate.serve.CALIBRATION_MODEL (random weights)",
)
#: Prompt and output tokens of every calibration request.
CAL_PROMPT_TOKENS = 64
CAL_OUTPUT_TOKENS = 32

#: Burst sizes of the calibration load (simultaneous requests).
BURSTS: tuple[int, ...] = (1, 2, 4, 8, 16)
#: The calibration load's Poisson stretch runs at this fraction of the capacity the bursts' fit predicts.
CAL_LOAD_FRACTION = 0.6
#: Requests in that stretch.
CAL_POISSON_REQUESTS = 24


def capacity_rps(
    model: ModelSpec,
    device: Device,
    profile: EfficiencyProfile,
    engine: EngineProfile,
    settings: EngineSettings,
    *,
    prompt_len: int,
    output_len: int,
    requests: int = 200,
) -> float:
    """Requests/s the simulator serves when the queue never empties (``requests`` arrive at once)."""
    burst = [LoadRequest(arrival_s=0.0, prompt_len=prompt_len, output_len=output_len)] * requests
    out, _ = simulate_load(model, burst, settings, device=device, profile=profile, engine=engine)
    return float(out["requests_per_s"])


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

    # Every operating point counts the same: iterations are grouped by (decode batch, prefill or not) and
    # each group weighs as much in total, so the many large-batch steps of a burst do not decide the
    # batch-1 cost alone.
    keys = [(i.decode_seqs, i.prefill_tokens > 0) for i in its]
    counts: dict[tuple[int, bool], int] = {}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    sqrt_w = np.sqrt(np.array([len(keys) / (len(counts) * counts[k]) for k in keys]))  # mean weight 1

    def residuals(x: np.ndarray) -> np.ndarray:
        return sqrt_w * np.log(np.maximum(predict(params_of(x)), 1e-12) / measured)

    sol = least_squares(residuals, x0, bounds=(lo, hi), loss="soft_l1", f_scale=0.1)
    best = params_of(sol.x)
    pred = predict(best)
    return EngineFit(
        params=best,
        iterations=len(its),
        median_abs_rel=float(np.median(np.abs(pred / measured - 1.0))),
        total_time_rel=float(pred.sum() / measured.sum() - 1.0),
    )


@dataclass
class ServeCalibration:
    """A fitted serving engine of this host.

    Attributes:
        engine: the fitted profile (``device`` = the calibrated device id, ``fitted_on`` says on what).
        fit: parameters and residuals.
        capacity_rps: the calibrated simulator's capacity for the calibration workload. Units: requests/s.
        loads: the measured calibration loads (bursts, then the Poisson stretch).
        workload: prompt and output tokens of the calibration requests.
    """

    engine: EngineProfile
    fit: EngineFit
    capacity_rps: float
    loads: list[LoadResult] = field(default_factory=list)
    workload: dict[str, int] = field(default_factory=dict)

    def to_dict(self, *, raw: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "engine": self.engine.to_dict(),
            "fit": self.fit.to_dict(),
            "capacity_rps": self.capacity_rps,
            "workload": dict(self.workload),
            "iterations": sum(len(r.iterations) for r in self.loads),
        }
        if raw:
            out["loads"] = [r.to_dict() for r in self.loads]
        return out


def fit_loads(
    loads: Sequence[LoadResult],
    model: ModelSpec,
    device: Device,
    profile: EfficiencyProfile,
    base: EngineProfile,
    *,
    precision: str = "fp32",
) -> EngineFit:
    """:func:`fit_engine` on every non-empty iteration of ``loads``."""
    its = [i for r in loads for i in r.iterations if i.seqs > 0 and i.duration_s > 0]
    return fit_engine(its, engine_predictor(model, device, profile, base, its, precision=precision))


def fitted_engine(
    base: EngineProfile, device: Device, fit: EngineFit, *, date: str | None = None
) -> EngineProfile:
    """``base`` with the fitted parameters, for ``device``, labelled."""
    return base.replace(
        device=device.id,
        **fit.params,
        source=(
            f"fitted by mlcost calibrate --serve on {fit.iterations} iterations of a calibration load "
            f"(median |error| {fit.median_abs_rel:.1%})"
        ),
        date=date or datetime.date.today().isoformat(),
        fitted_on="calibration load on this host: bursts of 1-16 requests + a Poisson stretch",
    )


def calibrate_hf_engine(
    engine: Any,
    model: ModelSpec,
    device: Device,
    profile: EfficiencyProfile,
    base: EngineProfile,
    *,
    prompt_len: int,
    output_len: int,
    seed: int = 1000,
    poisson_requests_n: int = CAL_POISSON_REQUESTS,
    progress: Callable[[str], None] | None = None,
) -> ServeCalibration:
    """Play the calibration load (module docstring) on a started :class:`~mlcost.measure.serve_load.HfEngine`
    serving ``model`` and fit the engine profile."""
    say = progress or (lambda _m: None)
    settings = engine.settings
    loads: list[LoadResult] = []
    for k in BURSTS:
        say(f"burst of {k}")
        loads.append(
            engine.run([LoadRequest(arrival_s=0.0, prompt_len=prompt_len, output_len=output_len)] * k)
        )
    first = fit_loads(loads, model, device, profile, base)
    cap = capacity_rps(
        model,
        device,
        profile,
        base.replace(**first.params),
        settings,
        prompt_len=prompt_len,
        output_len=output_len,
    )
    rate = CAL_LOAD_FRACTION * cap
    say(f"Poisson stretch at {rate:.2f} requests/s")
    work = poisson_requests(rate, poisson_requests_n, prompt_len=prompt_len, output_len=output_len, seed=seed)
    loads.append(engine.run(work, rate_per_s=rate))
    fit = fit_loads(loads, model, device, profile, base)
    eng = fitted_engine(base, device, fit)
    cap = capacity_rps(model, device, profile, eng, settings, prompt_len=prompt_len, output_len=output_len)
    return ServeCalibration(
        engine=eng,
        fit=fit,
        capacity_rps=cap,
        loads=loads,
        workload={"prompt_tokens": prompt_len, "output_tokens": output_len},
    )


def run_serve_calibration(
    device: Device,
    profile: EfficiencyProfile,
    base: EngineProfile,
    *,
    settings: EngineSettings | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> ServeCalibration:
    """``mlcost calibrate --serve``: serve :data:`CALIBRATION_MODEL` with transformers' continuous batching
    on this CPU, play the calibration load and fit the hf engine (≈ 30–60 s on 2 cores)."""
    from mlcost.measure.serve_load import HfEngine
    from mlcost.measure.torch_models import build_model

    say = progress or (lambda _m: None)
    say("serving: building the calibration model")
    module = build_model(CALIBRATION_MODEL, seed=seed)
    with HfEngine(module, settings or EngineSettings(), seed=seed) as engine:
        say("serving: warm-up")
        engine.run(
            poisson_requests(
                50.0, 8, prompt_len=CAL_PROMPT_TOKENS, output_len=CAL_OUTPUT_TOKENS, seed=seed + 99
            )
        )
        return calibrate_hf_engine(
            engine,
            CALIBRATION_MODEL,
            device,
            profile,
            base,
            prompt_len=CAL_PROMPT_TOKENS,
            output_len=CAL_OUTPUT_TOKENS,
            seed=seed + 1000,
            progress=lambda m: say(f"serving: {m}"),
        )
