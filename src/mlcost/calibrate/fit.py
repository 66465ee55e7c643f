"""Fit the estimator's efficiency profile of this machine.

Two stages:

1. **From the microbenchmarks** (:func:`local_device`, :func:`initial_profile`): the ``local`` device's
   peak per dtype is the best large-GEMM rate measured; its memory bandwidth is the GEMV weight-streaming
   rate (a matrix beyond the last-level cache: what batch-1 decode reads at; the large-copy rate when
   absent);
   ``matmul_half_dim`` comes from the GEMM size curve ``rate(n) = peak · eff_max · n / (n + half_dim)``;
   the collective efficiency is the 2-process all-reduce bus bandwidth over the copy bandwidth;
   ``mem_bw_eff`` starts at the element-wise ops' median rate over that memory bandwidth.
2. **From measured training runs** (:func:`fit_profile`): ``matmul_eff_max``, ``matmul_half_dim`` (the
   square-matmul curve only gives its starting value: training GEMMs have other shapes), ``attention_eff``,
   ``mem_bw_eff``, ``layer_overhead_s`` and ``step_overhead_s`` minimise the squared log-ratios of
   predicted to measured step time (``scipy.optimize.least_squares``, parameters in log space, bounded);
   ``framework_overhead_bytes`` and ``activation_overhead_frac`` (memory beyond the counted tensors:
   ``c + k · activations``) minimise the mean absolute log-ratio of predicted to measured memory over the
   runs that have a memory figure.

The prediction inside the fit is the estimator itself: :func:`mlcost.estimate.kernel.train_kernel` with the
inputs :func:`mlcost.estimate.train.build_inputs` makes for ``Cluster(device="local")`` and the candidate
profile — the function ``estimate_train`` calls — never a separate formula.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlcost.calibrate.microbench import MicrobenchResult
from mlcost.calibrate.runs import Measurement
from mlcost.catalog.host import CpuMatch, HostCpu, detect_host, match_cpu_row
from mlcost.catalog.loader import LOCAL_ID
from mlcost.catalog.protocol import CatalogLike
from mlcost.catalog.schema import Device, EfficiencyProfile
from mlcost.errors import SpecError
from mlcost.estimate.serve_step import STREAM_EXTRA_PREFIX

#: Parameters refined on training runs, with (lower, upper) bounds.
TIME_PARAMS: dict[str, tuple[float, float]] = {
    "matmul_eff_max": (0.05, 1.0),
    "matmul_half_dim": (1.0, 4096.0),
    "attention_eff": (0.005, 1.0),
    # > 1: activation-sized element-wise ops run from the caches, faster than the large-copy rate the
    # device's bandwidth is (the optimizer's streaming is capped at that rate: estimate.kernel).
    "mem_bw_eff": (0.005, 4.0),
    "layer_overhead_s": (1e-6, 0.05),
    "step_overhead_s": (1e-6, 1.0),
}

#: What each fitted parameter means, for the CLI and docs.
PARAM_MEANING: dict[str, str] = {
    "matmul_eff_max": "fraction of the measured matmul peak that large GEMMs reach in training",
    "matmul_half_dim": "GEMM dimension at which half of matmul_eff_max is reached (elements)",
    "attention_eff": "fraction of peak reached by attention score/value FLOPs",
    "mem_bw_eff": (
        "element-wise ops' rate / the memory bandwidth (GEMV rate; > 1: cache-resident); the optimizer's "
        "stream is capped at the large-copy rate"
    ),
    "intra_comm_eff": "all-reduce bus bandwidth between local processes / copy bandwidth",
    "layer_overhead_s": "fixed time per layer per micro-batch forward+backward (dispatch), s",
    "step_overhead_s": "fixed time per optimizer step (Python, zero_grad, loss), s",
    "framework_overhead_bytes": "memory beyond tensors the estimator counts (allocator, autograd buffers), bytes",
    "activation_overhead_frac": "further memory beyond tensors per byte of stored activations (allocator churn)",
}


class _LocalCatalog:
    """The real catalog, with the ``local`` device (not yet saved) resolvable by ``resolve_hardware``."""

    def __init__(self, base: Any, device: Device) -> None:
        self._base = base
        self._device = device

    def device(self, device_id: str) -> Device:
        if device_id == self._device.id:
            return self._device
        return self._base.device(device_id)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)


def today() -> str:
    return datetime.date.today().isoformat()


def local_device(mb: MicrobenchResult, base: Device | None, *, date: str | None = None) -> Device:
    """The ``local`` device row: ``base`` (this machine's catalog row) with the measured peaks and memory
    bandwidth = the GEMV weight-streaming rate (what decode and a catalog's DRAM bandwidth mean; the copy
    rate when no GEMV was measured); intra-node bandwidth = copy bandwidth (local processes talk through
    memory)."""
    peaks: dict[str, float] = {}
    for dtype, prec in (("float32", "fp32"), ("bfloat16", "bf16"), ("float16", "fp16")):
        p = mb.peak_flops_per_s(dtype)
        if p:
            peaks[prec] = p
    if "fp32" not in peaks:
        raise SpecError("the microbenchmarks measured no fp32 matmul rate", hint="rerun mlcost calibrate")
    bw = memory_bandwidth(mb)
    what = (
        "fp32 GEMV beyond the last-level cache" if mb.gemv_bytes_per_s else "large fp32 copy (read + write)"
    )
    desc = (
        f"measured by mlcost calibrate on {date or today()}: fp32 peak = best square-GEMM rate, "
        f"bandwidth = {what}, {mb.threads} torch threads"
    )
    if base is not None:
        return dataclasses.replace(
            base,
            id=LOCAL_ID,
            name=f"{base.name} (calibrated)",
            peak_flops_per_s=peaks,
            mem_bw_bytes_per_s=bw,
            intra_node_bw_bytes_per_s=mb.copy_bytes_per_s
            if base.kind == "cpu"
            else base.intra_node_bw_bytes_per_s,
            source=f"{desc}; other fields from catalog row {base.id}",
            date=date or today(),
        )
    import psutil

    return Device(
        id=LOCAL_ID,
        name="this machine (calibrated)",
        vendor="unknown",
        kind="cpu",
        peak_flops_per_s=peaks,
        memory_bytes=float(psutil.virtual_memory().total),
        mem_bw_bytes_per_s=bw,
        tdp_w=10.0 * max(1, mb.threads),
        idle_w=None,
        devices_per_node=1,
        intra_node_bw_bytes_per_s=mb.copy_bytes_per_s,
        inter_node_bw_bytes_per_s=1.25e9,
        source=f"{desc}; tdp_w assumed 10 W per core, inter-node 10 Gb/s assumed",
        date=date or today(),
    )


def fit_matmul_curve(rates: dict[int, float], peak: float) -> tuple[float, float]:
    """Fit ``rate(n)/peak = eff_max · n / (n + half_dim)`` to a GEMM size curve; returns
    (eff_max, half_dim). Units: -, elements."""
    from scipy.optimize import least_squares

    n = np.array(sorted(rates), dtype=np.float64)
    eff = np.array([rates[int(k)] for k in n]) / peak

    def resid(th: np.ndarray) -> np.ndarray:
        e_max, half = np.exp(th)
        return np.asarray(np.log(e_max * n / (n + half)) - np.log(eff))

    sol = least_squares(resid, np.log([1.0, 128.0]), bounds=(np.log([0.1, 1.0]), np.log([1.5, 1e5])))
    e_max, half = np.exp(sol.x)
    return float(e_max), float(half)


def memory_bandwidth(mb: MicrobenchResult) -> float:
    """The ``local`` row's memory bandwidth: the GEMV weight-streaming rate, else the copy rate. Units: bytes/s."""
    return mb.gemv_bytes_per_s or mb.copy_bytes_per_s


def initial_profile(
    mb: MicrobenchResult, prior: EfficiencyProfile, *, date: str | None = None
) -> EfficiencyProfile:
    """The microbenchmark stage (module docstring) on top of ``prior`` (the catalog profile)."""
    peak = mb.peak_flops_per_s("float32") or 1.0
    e_max, half = fit_matmul_curve(mb.matmul_flops_per_s["float32"], peak)
    elem = sorted(mb.elementwise_bytes_per_s.values())
    bw = memory_bandwidth(mb)
    mem_eff = float(np.median(elem)) / bw if elem and bw else prior.mem_bw_eff
    comm = prior.intra_comm_eff
    if mb.allreduce_bus_bytes_per_s and mb.copy_bytes_per_s:
        comm = max(mb.allreduce_bus_bytes_per_s.values()) / mb.copy_bytes_per_s
    return dataclasses.replace(
        prior,
        device=LOCAL_ID,
        matmul_eff_max=float(min(1.0, e_max)),
        matmul_half_dim=half,
        mem_bw_eff=float(min(TIME_PARAMS["mem_bw_eff"][1], max(0.005, mem_eff))),
        intra_comm_eff=float(min(1.0, max(0.01, comm))),
        source="mlcost calibrate: microbenchmarks only (no training runs fitted)",
        date=date or today(),
        # Measured, not fitted: the rate eager CPU training pays on its fresh >= 32 MiB allocations, the
        # large-copy rate that caps the optimizer's stream (the device's bandwidth is the GEMV rate), and
        # the weight-stream rate per GEMM row count relative to one row (serving's decode batches).
        extra={
            **{
                k: v
                for k, v in (
                    ("first_touch_bytes_per_s", mb.first_touch_bytes_per_s),
                    ("copy_bytes_per_s", mb.copy_bytes_per_s),
                )
                if v
            },
            **stream_extras(mb),
        },
    )


def stream_extras(mb: MicrobenchResult) -> dict[str, float]:
    """The profile extras of the weight-stream curve: ``weight_stream_rel_rows_<M>`` = rate at M rows / rate
    at one row (:mod:`mlcost.estimate.serve_step` reads them); {} when it was not measured."""
    curve = mb.weight_stream_bytes_per_s
    one = curve.get(1)
    if not one:
        return {}
    return {f"{STREAM_EXTRA_PREFIX}{m}": float(v / one) for m, v in sorted(curve.items()) if v > 0}


@dataclass(frozen=True)
class _Case:
    m: Measurement
    inputs: Any  # TrainInputs with the profile fields to be replaced


def _cases(measurements: Sequence[Measurement], device: Device, profile: EfficiencyProfile) -> list[_Case]:
    from mlcost.catalog import builtin_catalog
    from mlcost.estimate.context import resolve_hardware
    from mlcost.estimate.train import build_inputs, validate_layout
    from mlcost.spec.cluster import Cluster

    # Only the device row and the profile enter the step time and memory the fit compares; the package
    # data supplies the rest (price, PUE, carbon).
    cat = _LocalCatalog(builtin_catalog(), device)
    out = []
    for m in measurements:
        cluster = Cluster(device=device.id, count=1)
        hw = resolve_hardware(cluster, cat, profile)
        dp = validate_layout(m.spec, m.job, cluster.count)
        out.append(_Case(m, build_inputs(m.spec, m.job, hw, dp)))
    return out


def _profile_fields(p: EfficiencyProfile) -> dict[str, float]:
    return {
        "matmul_eff_max": p.matmul_eff_max,
        "matmul_half_dim": p.matmul_half_dim,
        "attention_eff": p.attention_eff,
        "mem_bw_eff": p.mem_bw_eff,
        "intra_comm_eff": p.intra_comm_eff,
        "inter_comm_eff": p.inter_comm_eff,
        "dp_overlap": p.dp_overlap,
        "power_frac": p.power_frac,
        "framework_overhead_bytes": p.framework_overhead_bytes,
        "step_overhead_s": p.step_overhead_s,
        "layer_overhead_s": p.layer_overhead_s,
        "activation_overhead_frac": p.activation_overhead_frac,
    }


def predict(
    measurements: Sequence[Measurement], device: Device, profile: EfficiencyProfile
) -> list[dict[str, float]]:
    """The estimator's step time, memory and per-term breakdown for each measurement (``train_kernel``
    on ``build_inputs`` for ``Cluster(device=device.id)``, as ``estimate_train`` does)."""
    from mlcost.estimate.kernel import train_kernel

    out = []
    for c in _cases(measurements, device, profile):
        r = train_kernel(c.m.spec, c.inputs)
        out.append({k: float(v) for k, v in r.items() if k.startswith(("time_", "memory_", "step_time"))})
    return out


def _step_times(cases: list[_Case], fields: dict[str, float]) -> np.ndarray:
    from mlcost.estimate.kernel import train_kernel

    return np.array([float(train_kernel(c.m.spec, c.inputs.replace(**fields))["step_time_s"]) for c in cases])


@dataclass(frozen=True, kw_only=True)
class FitResult:
    """A fitted profile with its diagnostics.

    Attributes:
        profile: the fitted efficiency profile (device ``local``).
        rows: per measurement: label, source, measured and predicted step time (s) and memory (bytes),
            relative errors.
        time_mape: mean absolute relative step-time error over the fitted runs (fraction).
        memory_mean_abs_rel: mean absolute relative memory error over runs with memory (fraction), or None.
    """

    profile: EfficiencyProfile
    rows: list[dict[str, Any]]
    time_mape: float
    memory_mean_abs_rel: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile.to_dict(),
            "rows": self.rows,
            "time_mape": self.time_mape,
            "memory_mean_abs_rel": self.memory_mean_abs_rel,
        }


def peak_rss_bytes(m: Measurement) -> float | None:
    """The run's process peak RSS (what ``mlcost measure`` reports and the estimate predicts on a CPU):
    the job's peak above the runtime plus the runtime resident before the build; None without both."""
    if not m.peak_delta_bytes or m.baseline_rss_bytes is None:
        return None
    return float(m.peak_delta_bytes) + float(m.baseline_rss_bytes)


def compare(
    measurements: Sequence[Measurement], device: Device, profile: EfficiencyProfile
) -> tuple[list[dict[str, Any]], float, float | None]:
    """Predicted vs measured rows, step-time MAPE and mean absolute memory error (fractions)."""
    preds = predict(measurements, device, profile)
    rows: list[dict[str, Any]] = []
    t_err, m_err = [], []
    for m, p in zip(measurements, preds, strict=True):
        peak = peak_rss_bytes(m)
        e_t = p["step_time_s"] / m.step_time_s - 1.0
        t_err.append(abs(e_t))
        row: dict[str, Any] = {
            "label": m.label,
            "source": m.source,
            "measured_step_time_s": m.step_time_s,
            "predicted_step_time_s": p["step_time_s"],
            "step_time_error_rel": e_t,
            "measured_memory_bytes": peak,
            "predicted_memory_bytes": p["memory_total_bytes"],
            "memory_error_rel": None,
            "breakdown_s": {k[5:]: v for k, v in p.items() if k.startswith("time_") and v},
        }
        if peak:
            e_m = p["memory_total_bytes"] / peak - 1.0
            row["memory_error_rel"] = e_m
            m_err.append(abs(e_m))
        rows.append(row)
    mape = float(np.mean(t_err)) if t_err else math.nan
    return rows, mape, (float(np.mean(m_err)) if m_err else None)


def fit_profile(
    measurements: Sequence[Measurement],
    device: Device,
    start: EfficiencyProfile,
    *,
    params: Sequence[str] = tuple(TIME_PARAMS),
    date: str | None = None,
) -> FitResult:
    """Refine ``params`` of ``start`` on measured runs (module docstring); returns the fitted profile and
    its residuals. Needs at least as many runs as parameters."""
    from scipy.optimize import least_squares

    ms = [m for m in measurements if m.step_time_s > 0]
    if len(ms) < len(params):
        raise SpecError(
            f"{len(ms)} measured runs cannot fit {len(params)} parameters",
            hint="measure more configurations (mlcost calibrate --runs N) or drop --no-runs",
        )
    base = _profile_fields(start)
    # The time fit does not depend on the memory overheads; one case list serves both fits.
    cases = _cases(ms, device, start)
    meas = np.array([m.step_time_s for m in ms])
    lo = np.log([TIME_PARAMS[p][0] for p in params])
    hi = np.log([TIME_PARAMS[p][1] for p in params])
    x0 = np.clip(np.log([max(base[p], TIME_PARAMS[p][0]) for p in params]), lo + 1e-9, hi - 1e-9)

    def resid(th: np.ndarray) -> np.ndarray:
        fields = dict(zip(params, np.exp(th).tolist(), strict=True))
        return np.asarray(np.log(_step_times(cases, fields)) - np.log(meas))

    sol = least_squares(resid, x0, bounds=(lo, hi), x_scale=1.0, diff_step=1e-3)
    fitted = dict(zip(params, (float(v) for v in np.exp(sol.x)), strict=True))

    fitted.update(_fit_memory(cases))

    changes: dict[str, Any] = dict(fitted)
    profile = dataclasses.replace(
        start,
        **changes,
        source=(
            f"mlcost calibrate: microbenchmarks + least squares on {len(ms)} measured training runs "
            f"(log step-time residuals; memory overhead c + k·activations minimises mean |log ratio|)"
        ),
        date=date or today(),
    )
    rows, mape, mem = compare(ms, device, profile)
    profile = dataclasses.replace(profile, error_band_rel=float(min(1.0, max(0.1, 2.0 * mape))))
    return FitResult(profile=profile, rows=rows, time_mape=mape, memory_mean_abs_rel=mem)


#: Fewest runs with a memory figure for which the activation-proportional term is fitted too.
MIN_RUNS_FOR_ACTIVATION_TERM = 4


def _fit_memory(cases: list[_Case]) -> dict[str, float]:
    """Memory beyond the counted tensors, ``c + k · layer activations``, fitted to the **peak RSS of the
    run's process** (what ``mlcost measure`` reports): the constant ``c`` = ``framework_overhead_bytes``
    (the torch runtime resident before the model is built, allocator arenas) and ``k`` =
    ``activation_overhead_frac`` (heap pages the activations' churn leaves resident). They minimise the
    mean absolute log-ratio of predicted to measured memory — relative error, as for step time, so small
    models (where ``c`` dominates) weigh as much as large ones. ``k`` is fitted only from
    ``MIN_RUNS_FOR_ACTIVATION_TERM`` runs up (else it stays 0). Returns the fitted fields ({} without
    memory figures)."""
    from scipy.optimize import minimize, minimize_scalar

    from mlcost.estimate.kernel import train_kernel

    tensors, acts, measured = [], [], []
    for c in cases:
        if c.m.peak_delta_bytes and c.m.baseline_rss_bytes is not None:
            # The prediction is linear in (c, k): evaluate it at k = 0 and k = 1 (c = 0).
            zero = c.inputs.replace(framework_overhead_bytes=0.0, activation_overhead_frac=0.0)
            base = float(train_kernel(c.m.spec, zero)["memory_total_bytes"])
            one = float(
                train_kernel(c.m.spec, zero.replace(activation_overhead_frac=1.0))["memory_total_bytes"]
            )
            tensors.append(base)
            acts.append(one - base)
            measured.append(float(c.m.peak_delta_bytes) + float(c.m.baseline_rss_bytes))
    if not tensors:
        return {}
    t_arr, a_arr, m_arr = np.array(tensors), np.array(acts), np.array(measured)
    scale = float(np.median(m_arr))  # optimise in units of a typical measurement (well conditioned)

    def loss(th: np.ndarray) -> float:
        c, k = float(th[0]) * scale, float(th[1])
        return float(np.mean(np.abs(np.log(np.maximum(t_arr + c + k * a_arr, 1.0) / m_arr))))

    c_hi = float(np.max(m_arr)) / scale
    if len(tensors) < MIN_RUNS_FOR_ACTIVATION_TERM:
        one = minimize_scalar(lambda c: loss(np.array([c, 0.0])), bounds=(0.0, c_hi), method="bounded")
        return {"framework_overhead_bytes": float(one.x) * scale, "activation_overhead_frac": 0.0}
    # The objective is convex but not smooth (absolute values): a coarse grid, then Powell from the best.
    grid = [np.array([c0, k0]) for c0 in np.linspace(0.0, c_hi, 41) for k0 in np.linspace(0.0, 3.0, 31)]
    x0 = min(grid, key=loss)
    sol = minimize(
        loss, x0, method="Powell", bounds=[(0.0, c_hi), (0.0, 3.0)], options={"xtol": 1e-8, "ftol": 1e-12}
    )
    best = sol.x if loss(sol.x) <= loss(x0) else x0
    return {"framework_overhead_bytes": float(best[0]) * scale, "activation_overhead_frac": float(best[1])}


def catalog_row_for_this_machine(
    catalog: CatalogLike | None = None, host: HostCpu | None = None
) -> Device | None:
    """The catalog row of this host's CPU (:func:`mlcost.catalog.host.match_cpu_row`: vendor, ISA, model,
    logical CPUs; never ``local``), or None when only a generic ISA row fits (or no row at all)."""
    match = match_host(catalog, host)
    return match.device if match is not None and not match.generic else None


def match_host(catalog: CatalogLike | None = None, host: HostCpu | None = None) -> CpuMatch | None:
    """:func:`mlcost.catalog.host.match_cpu_row` for ``host`` (this machine by default) in ``catalog``
    (the built-in one by default)."""
    from mlcost.catalog import builtin_catalog

    return match_cpu_row(
        catalog if catalog is not None else builtin_catalog(), host if host is not None else detect_host()
    )


#: A fit whose step-time MAPE over its own runs is above this is not saved without ``--force``: the
#: profile would mislead every ``--device local`` estimate by more than the error band users expect.
MAX_FIT_MAPE = 0.20
#: A fitted parameter within this relative distance of a bound counts as "at the bound": the optimiser
#: wanted to go further, so the model does not explain the runs (or the runs are noise).
AT_BOUND_REL = 1e-3


def fit_problems(result: FitResult, *, max_mape: float = MAX_FIT_MAPE) -> list[str]:
    """Why a fitted profile should not be saved: parameters at their bounds, a step-time MAPE above
    ``max_mape`` (fraction), or no finite error at all. Empty when the fit is fine."""
    problems: list[str] = []
    for name, (lo, hi) in TIME_PARAMS.items():
        value = float(getattr(result.profile, name))
        if value <= lo * (1 + AT_BOUND_REL):
            problems.append(f"{name} = {value:.3g} at its lower bound {lo:g}")
        elif value >= hi * (1 - AT_BOUND_REL):
            problems.append(f"{name} = {value:.3g} at its upper bound {hi:g}")
    if not math.isfinite(result.time_mape):
        problems.append("step-time error is not finite")
    elif result.time_mape > max_mape:
        problems.append(f"step-time MAPE {result.time_mape:.1%} above {max_mape:.0%}")
    return problems
