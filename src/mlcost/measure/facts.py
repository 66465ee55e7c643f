"""Facts a measured run needs, resolved once and by the estimator's own code: the catalog row of the
device in use, price / PUE / carbon (:func:`mlcost.estimate.context.resolve_hardware`), the MFU peak, and
the estimator's prediction for the same run (the ``predicted`` block). No torch at import.

Every fact comes from the :class:`~mlcost.measure.options.RunFacts` the run is given (its catalog and this
host's calibration); nothing here looks for the user's catalog or calibration itself. The application edge
(:mod:`mlcost.context`, called by the CLI) assembles them; None means the package catalog, no calibration.

The device in use (:func:`run_device`): a CUDA device is the catalog GPU row named like it; a CPU is the
calibrated ``local`` row when the calibration was measured on this host, else the catalog row
:func:`mlcost.catalog.host.match_cpu_row` picks by vendor and ISA (a generic row of the host's ISA, scaled to
its logical CPUs, when no specific row matches), labelled so.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, cast

from mlcost.catalog.host import match_cpu_row
from mlcost.catalog.protocol import CatalogLike
from mlcost.catalog.schema import Device, EfficiencyProfile
from mlcost.measure.options import (
    RUNNER_FLASH_ATTENTION,
    RUNNER_FUSED_ELEMENTWISE,
    CostOptions,
    RunFacts,
    ServeShape,
    TrainShape,
    facts_or_builtin,
)
from mlcost.spec import ModelSpec, TrainJob

__all__ = [
    "MFU_MAX",
    "CostInputs",
    "RunDevice",
    "RunFacts",
    "calibration_mismatch",
    "catalog_device_for",
    "cost_inputs",
    "local_calibration",
    "mfu_of",
    "mfu_peak",
    "money_metrics",
    "predict_load",
    "predict_serve",
    "predict_train",
    "run_device",
    "runner_job",
]

#: MFU above this is impossible; a peak that yields it is wrong (an uncalibrated or mismatched row).
MFU_MAX = 1.0


class _WithDevice:
    """``base`` with one more device row (and its efficiency profile) resolvable by ``resolve_hardware``:
    the calibrated ``local`` row, or a generic CPU row scaled to this host."""

    def __init__(self, base: CatalogLike, device: Device, profile: EfficiencyProfile | None = None) -> None:
        self._base = base
        self._device = device
        self._profile = profile

    def device(self, device_id: str) -> Device:
        return self._device if device_id == self._device.id else self._base.device(device_id)

    def efficiency(self, device_id: str) -> EfficiencyProfile:
        if self._profile is not None and device_id == self._device.id:
            return self._profile
        return self._base.efficiency(device_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)


@dataclass(frozen=True)
class RunDevice:
    """The catalog row of the device a run uses.

    Attributes:
        device: the row (the calibrated ``local`` row, a catalog row, or a generic row scaled to the host).
        label: where it came from, for ``mfu_peak_source`` and warnings.
        catalog: a catalog in which ``device.id`` resolves to ``device`` (with its efficiency profile).
        calibrated: True for this host's calibrated ``local`` row.
    """

    device: Device
    label: str
    catalog: CatalogLike
    calibrated: bool = False


def _gpu_row(rows: list[Any], device: str) -> Any:
    try:
        import torch

        name = torch.cuda.get_device_name(torch.device(device)).lower()
    except Exception:
        return None
    for row in rows:
        if getattr(row, "kind", "") != "gpu":
            continue
        row_name = str(getattr(row, "name", "")).lower().replace("nvidia ", "")
        tokens = [t for t in row_name.split() if t not in ("sxm", "pcie")]
        if tokens and all(t in name for t in tokens[:2]):
            return row
    return None


def calibration_mismatch(calibration: Any, facts: RunFacts) -> str | None:
    """Why ``calibration`` does not describe the host of ``facts`` (one line), or None when it does. A
    calibration that records no host identity is taken as the caller says: for this host."""
    recorded = (getattr(calibration, "provenance", None) or {}).get("host_cpu")
    if not isinstance(recorded, dict):
        return None
    return facts.this_host().differs_from(recorded)


def local_calibration(device: str, facts: RunFacts | None = None) -> Any:
    """The calibrated ``local`` device row of ``facts`` on a CPU run when its calibration was measured on
    this host, else None."""
    f = facts_or_builtin(facts)
    cal = f.calibration
    if device.startswith("cuda") or cal is None or calibration_mismatch(cal, f) is not None:
        return None
    return getattr(cal, "device", None)


def run_device(device: str, facts: RunFacts | None = None) -> RunDevice | None:
    """The row of the device in use (see the module docstring), or None when nothing describes it."""
    f = facts_or_builtin(facts)
    if device.startswith("cuda"):
        row = _gpu_row(list(f.catalog.devices()), device)
        return None if row is None else RunDevice(row, f"catalog row {row.id}", f.catalog)
    local = local_calibration(device, f)
    if local is not None:
        cal = f.calibration
        label = f"calibrated profile ({getattr(cal, 'source', '') or 'mlcost calibrate'})"
        profile = getattr(cal, "profile", None)
        catalog = cast(CatalogLike, _WithDevice(f.catalog, local, profile))
        return RunDevice(local, label, catalog, calibrated=True)
    match = match_cpu_row(f.catalog, f.this_host())
    if match is None:
        return None
    catalog = cast(CatalogLike, _WithDevice(f.catalog, match.device)) if match.generic else f.catalog
    return RunDevice(match.device, match.label, catalog)


def catalog_device_for(device: str, facts: RunFacts | None = None) -> Any:
    """The catalog row of the device in use: the CUDA device by name, or the CPU row
    :func:`mlcost.catalog.host.match_cpu_row` picks for this host (never the calibrated ``local`` row).
    None when nothing matches."""
    f = facts_or_builtin(facts)
    if device.startswith("cuda"):
        return _gpu_row(list(f.catalog.devices()), device)
    match = match_cpu_row(f.catalog, f.this_host())
    return match.device if match is not None else None


def mfu_peak(device: str, precision: str, facts: RunFacts | None = None) -> tuple[float | None, str]:
    """Peak FLOP/s of one device for MFU, and where it came from: the calibrated profile of this CPU
    (``mlcost calibrate``, when ``facts`` carries it), else the catalog row of the device in use for the
    precision (its fp32 peak where it has no units for the precision)."""
    prec = "fp32" if precision == "tf32" and not device.startswith("cuda") else precision
    rd = run_device(device, facts)
    if rd is None:
        return None, "unknown: this device is not calibrated (mlcost calibrate) and matches no catalog row"
    row, label = rd.device, rd.label
    peak = row.peak_for(prec)
    fp32 = row.peak_for("fp32")
    if rd.calibrated:
        value = peak or fp32
        if value:
            return float(value), label
    if peak is None and prec != "fp32" and fp32:
        return float(fp32), f"{label}: fp32 peak (no {prec} units; {row.date})"
    if peak:
        return float(peak), f"{label}: {prec} dense peak ({row.date})"
    return None, f"unknown: {label} has no {prec} peak"


def mfu_of(
    achieved_flops_per_s_per_device: float, device: str, precision: str, facts: RunFacts | None = None
) -> dict[str, Any]:
    """``mfu``, ``mfu_peak_flops_per_s`` and ``mfu_peak_source``. MFU is never above 100%: when the peak
    would make it so, the peak is wrong, MFU is reported unavailable (None) and ``mfu_unavailable_reason``
    says why."""
    peak, source = mfu_peak(device, precision, facts=facts)
    out: dict[str, Any] = {"mfu_peak_flops_per_s": peak, "mfu_peak_source": source, "mfu": None}
    if not peak:
        out["mfu_unavailable_reason"] = source
        return out
    mfu = achieved_flops_per_s_per_device / peak
    if mfu > MFU_MAX:
        out["mfu_unavailable_reason"] = (
            f"achieved {achieved_flops_per_s_per_device:.3g} FLOP/s exceeds the peak {peak:.3g} FLOP/s "
            f"({source}): that peak is wrong for this device; run 'mlcost calibrate' to measure it"
        )
        out["mfu_peak_suspect"] = True
        return out
    out["mfu"] = mfu
    return out


@dataclass(frozen=True)
class CostInputs:
    """Price, PUE and carbon intensity used for ``cost_usd`` and ``co2_kg``, with where each came from.

    Attributes:
        price_usd_per_device_h: Units: USD per device-hour; None when neither the user nor the catalog
            gives one (then ``cost_usd`` is None, never a made-up 0).
        pue: facility / IT energy.
        carbon_kg_per_kwh: Units: kg CO2e per kWh.
        price_source / pue_source / carbon_source: provenance labels.
    """

    price_usd_per_device_h: float | None
    price_source: str
    pue: float
    pue_source: str
    carbon_kg_per_kwh: float
    carbon_source: str


def cost_inputs(device: str, cost: CostOptions | None = None, facts: RunFacts | None = None) -> CostInputs:
    """Price, PUE and carbon by :func:`mlcost.estimate.context.resolve_hardware` for the row of the device
    in use (:func:`run_device`; the user's values first, then the catalog's, each labelled)."""
    from mlcost.estimate.context import resolve_hardware
    from mlcost.spec import Cluster

    cost = cost or CostOptions()
    f = facts_or_builtin(facts)
    rd = run_device(device, f)
    if rd is None:
        return _cost_inputs_without_row(f.catalog, device, cost)
    device_id = rd.device.id
    cluster = Cluster(
        device=device_id,
        price_usd_per_device_h=cost.price_usd_per_device_h,
        pue=cost.pue,
        carbon_kg_per_kwh=cost.carbon_kg_per_kwh,
        region=cost.region,
    )
    hw = resolve_hardware(cluster, rd.catalog)
    notes = {a.name: a.source for a in hw.assumptions}
    price_src = notes.get("price_usd_per_device_h", "")
    if hw.price_usd_per_device_h is None:
        price_src = f"no catalog price for {device_id}: give --price-usd-per-h"
    return CostInputs(
        hw.price_usd_per_device_h,
        price_src,
        hw.pue,
        notes.get("pue", ""),
        hw.carbon_kg_per_kwh,
        notes.get("carbon_kg_per_kwh", ""),
    )


def _cost_inputs_without_row(catalog: CatalogLike, device: str, cost: CostOptions) -> CostInputs:
    """No catalog row for this device: the user's values, else the catalog's provider-default PUE and the
    region's (or world) carbon intensity — the same rows resolve_hardware falls back to."""
    price = cost.price_usd_per_device_h
    price_src = "given by the user" if price is not None else f"no catalog row for {device}: no price"
    if cost.pue is not None:
        pue, pue_src = cost.pue, "given by the user"
    else:
        prow = catalog.pue(None)
        pue, pue_src = prow.pue, f"{prow.provider}: {prow.source} ({prow.date})"
    if cost.carbon_kg_per_kwh is not None:
        carbon, carbon_src = cost.carbon_kg_per_kwh, "given by the user"
    else:
        crow = catalog.carbon(zone=cost.region)
        carbon, carbon_src = crow.kg_co2_per_kwh, f"zone {crow.zone}: {crow.source} ({crow.date})"
    return CostInputs(price, price_src, pue, pue_src, carbon, carbon_src)


def money_metrics(
    *,
    energy_j: float | None,
    measured_s: float,
    world_size: int,
    tokens_per_s: float | None,
    inputs: CostInputs,
) -> dict[str, Any]:
    """cost_usd (price × device-hours of the measured window), USD per million tokens and co2_kg
    (energy × PUE × carbon intensity)."""
    device_h = world_size * measured_s / 3600.0
    price = inputs.price_usd_per_device_h
    out: dict[str, Any] = {
        "cost_usd": price * device_h if price is not None else None,
        "cost_source": inputs.price_source,
        "price_usd_per_device_h": price,
        "device_hours": device_h,
        "usd_per_million_tokens": (
            price * world_size / 3600.0 / tokens_per_s * 1e6 if tokens_per_s and price is not None else None
        ),
        "pue": inputs.pue,
        "carbon_kg_per_kwh": inputs.carbon_kg_per_kwh,
    }
    if energy_j is not None:
        out["co2_kg"] = energy_j / 3.6e6 * inputs.pue * inputs.carbon_kg_per_kwh
        out["co2_source"] = f"energy × PUE {inputs.pue:g} ({inputs.pue_source}) × {inputs.carbon_source}"
    else:
        out["co2_kg"] = None
        out["co2_source"] = "unknown: no energy reading"
    return out


def runner_job(shape: TrainShape, *, world_size: int, precision: str, steps: int) -> TrainJob:
    """The estimator's job for a measured run (the runner's model flavour, one place)."""
    global_batch = shape.global_batch or shape.micro_batch * world_size
    return TrainJob(
        tokens=float(global_batch * shape.seq_len * max(steps, 1)),
        seq_len=shape.seq_len,
        global_batch=global_batch,
        micro_batch=shape.micro_batch,
        precision=precision,  # type: ignore[arg-type]
        recompute=shape.recompute,  # type: ignore[arg-type]
        flash_attention=RUNNER_FLASH_ATTENTION,
        fused_elementwise=RUNNER_FUSED_ELEMENTWISE,
    )


def predict_train(
    spec: ModelSpec | None,
    shape: TrainShape,
    device: str,
    world_size: int,
    precision: str,
    steps: int,
    facts: RunFacts | None = None,
) -> dict[str, Any]:
    """The estimator's prediction for the same run: ``step_time_s``, ``model_flops_per_step``,
    ``hardware_flops_per_step``, ``mfu``, ``peak_memory_bytes``, ``tokens_per_s`` and the ``device`` row
    used (``local`` when ``facts`` carries this host's calibration) with ``device_source``, how it was
    chosen. ``{"error": ...}`` when the estimator cannot predict it."""
    if spec is None:
        return {}
    from mlcost.estimate import estimate_train
    from mlcost.spec import Cluster

    rd = run_device(device, facts)
    if rd is None:
        return {"error": f"no catalog row or calibration for {device}: run 'mlcost calibrate'"}
    device_id = rd.device.id
    try:
        job = runner_job(shape, world_size=world_size, precision=precision, steps=steps)
        est = estimate_train(spec, job, Cluster(device=device_id, count=world_size), catalog=rd.catalog)
    except Exception as exc:  # a prediction must never stop a measurement
        return {"error": f"{type(exc).__name__}: {exc}"}
    out: dict[str, Any] = {"device": device_id, "device_source": rd.label}
    for key in ("step_time_s", "model_flops_per_step", "hardware_flops_per_step", "mfu"):
        value = getattr(est, key, None)
        if isinstance(value, (int, float)):
            out[key] = float(value)
    with contextlib.suppress(Exception):  # the job's own memory per device
        out["peak_memory_bytes"] = float(est.memory.total)
    if out.get("step_time_s"):
        out["tokens_per_s"] = shape.seq_len * job.global_batch / out["step_time_s"]
    return out


def predict_serve(
    spec: ModelSpec | None, shape: ServeShape, device: str, facts: RunFacts | None = None
) -> dict[str, Any]:
    """The estimator's prediction for a measured serving run (:func:`mlcost.estimate.estimate_serve`, static
    batching: ``batch`` prompts prefilled together, then decoded in lock-step — what
    :func:`mlcost.measure.serve.run_serving` does), under the keys the measured metrics use: ``ttft_s``,
    ``time_per_output_token_s``, ``request_time_s``, ``tokens_per_s`` (output tokens), ``peak_memory_bytes``,
    plus ``bound`` (``memory`` or ``compute`` decode), ``batching``, the ``device`` row used and
    ``device_source``. ``{"error": ...}`` when the estimator cannot predict it; ``{}`` without a spec."""
    if spec is None:
        return {}
    from mlcost.estimate import estimate_serve
    from mlcost.spec import Cluster, ServeJob

    rd = run_device(device, facts)
    if rd is None:
        return {"error": f"no catalog row or calibration for {device}: run 'mlcost calibrate'"}
    device_id = rd.device.id
    try:
        job = ServeJob(
            prompt_len=shape.prompt_len,
            output_len=shape.output_len,
            batch=shape.batch,
            weight_precision=shape.precision,  # type: ignore[arg-type]
            kv_precision=shape.precision,  # type: ignore[arg-type]
        )
        est = estimate_serve(spec, job, Cluster(device=device_id), catalog=rd.catalog)
    except Exception as exc:  # a prediction must never stop a measurement
        return {"error": f"{type(exc).__name__}: {exc}"}
    out: dict[str, Any] = {
        "device": device_id,
        "device_source": rd.label,
        "batching": "static",
        "ttft_s": float(est.ttft_s),
        "time_per_output_token_s": float(est.time_per_output_token_s),
        "request_time_s": float(est.request_latency_s),
        "tokens_per_s": float(est.tokens_per_s),
        "bound": est.bound,
    }
    with contextlib.suppress(Exception):
        out["peak_memory_bytes"] = float(est.memory["total"])
    return out


def predict_load(
    spec: ModelSpec | None,
    requests: Any,
    settings: Any,
    device: str,
    precision: str,
    facts: RunFacts | None = None,
) -> dict[str, Any]:
    """The serving simulator's prediction for a measured continuous-batching load (``measure serve
    --engine hf``): the same requests (arrivals, lengths) and engine limits, iteration costs from the
    device in use (the calibrated ``local`` row on a calibrated host) and its ``hf`` engine row (fitted by
    ``mlcost calibrate --serve``, else the catalog's default for the device class), under the keys of the
    measured metrics (:func:`mlcost.measure.serve_load.load_metrics`), plus ``device``, ``device_source``,
    ``engine_source`` and ``engine_fitted``. ``{"error": ...}`` when it cannot predict; ``{}`` without a spec."""
    if spec is None:
        return {}
    from mlcost.measure.serve_load import simulate_load

    rd = run_device(device, facts)
    if rd is None:
        return {"error": f"no catalog row or calibration for {device}: run 'mlcost calibrate'"}
    try:
        engine = rd.catalog.engine_profile("hf", rd.device)
        profile = rd.catalog.efficiency(rd.device.id)
        out, _ = simulate_load(
            spec,
            requests,
            settings,
            device=rd.device,
            profile=profile,
            engine=engine,
            precision=precision,
            rate_per_s=None,
        )
    except Exception as exc:  # a prediction must never stop a measurement
        return {"error": f"{type(exc).__name__}: {exc}"}
    out.pop("rps", None)
    out.update(
        device=rd.device.id,
        device_source=rd.label,
        engine_source=f"hf/{engine.device}: {engine.source} ({engine.date})",
        engine_fitted=engine.fitted,
    )
    return out
