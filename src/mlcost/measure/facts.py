"""Facts a measured run needs, resolved once and by the estimator's own code: the catalog row of the
device in use, price / PUE / carbon (:func:`mlcost.estimate.context.resolve_hardware`), the MFU peak, and
the estimator's prediction for the same run (the ``predicted`` block). No torch at import.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from mlcost.measure.options import (
    RUNNER_FLASH_ATTENTION,
    RUNNER_FUSED_ELEMENTWISE,
    CostOptions,
    TrainShape,
)
from mlcost.spec import ModelSpec, TrainJob

#: MFU above this is impossible; a peak that yields it is wrong (an uncalibrated or mismatched row).
MFU_MAX = 1.0


def _catalog() -> Any:
    try:
        from mlcost.context import default_catalog

        return default_catalog()
    except Exception:
        return None


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


def catalog_device_for(device: str) -> Any:
    """The catalog row of the device in use: the CUDA device by name, or the CPU row whose name matches
    this CPU's model name. None when nothing matches (never "the only CPU row" for a different CPU)."""
    catalog = _catalog()
    if catalog is None:
        return None
    rows = list(catalog.devices())
    if device.startswith("cuda"):
        return _gpu_row(rows, device)
    from mlcost.measure.provenance import cpu_model_name

    model = (cpu_model_name() or "").lower()
    for row in rows:
        if getattr(row, "kind", "") != "cpu" or row.id == "local":
            continue
        words = [w for w in str(row.name).lower().replace("(", " ").split() if w.isalpha()]
        if words and all(w in model for w in words[:2]):
            return row
    return None


def local_calibration(device: str) -> Any:
    """This machine's calibrated ``local`` device row (``mlcost calibrate`` on this host) on a CPU run, else None."""
    if device.startswith("cuda"):
        return None
    from mlcost.context import local_calibration as saved_calibration

    cal = saved_calibration()
    return None if cal is None else cal.device


def _profile_peak(profile: Any, precision: str) -> float | None:
    if profile is None:
        return None
    if hasattr(profile, "peak_for"):  # the calibrated ``local`` device row
        value = profile.peak_for(precision) or profile.peak_for("fp32")
        return float(value) if value else None
    peaks = getattr(profile, "peak_flops_per_s", None)
    if isinstance(peaks, dict):
        value = peaks.get(precision) or peaks.get("fp32")
        return float(value) if value else None
    if isinstance(peaks, (int, float)) and peaks > 0:
        return float(peaks)
    extra = getattr(profile, "extra", None) or {}
    for key in (f"peak_{precision}_flops_per_s", "matmul_peak_flops_per_s", "peak_flops_per_s"):
        if isinstance(extra, dict) and extra.get(key):
            return float(extra[key])
    return None


def mfu_peak(device: str, precision: str) -> tuple[float | None, str]:
    """Peak FLOP/s of one device for MFU, and where it came from: the calibrated profile of this CPU
    (``mlcost calibrate``), else the catalog row of the device in use for the precision (its fp32 peak
    where it has no units for the precision)."""
    prec = "fp32" if precision == "tf32" and not device.startswith("cuda") else precision
    profile = local_calibration(device)
    peak = _profile_peak(profile, prec)
    if peak:
        return peak, f"calibrated profile ({getattr(profile, 'source', '') or 'mlcost calibrate'})"
    row = catalog_device_for(device)
    if row is None:
        return None, "unknown: this device is not calibrated (mlcost calibrate) and matches no catalog row"
    peak = row.peak_for(prec)
    if peak is None and prec != "fp32" and row.peak_for("fp32"):
        return float(row.peak_for("fp32")), f"catalog {row.id} fp32 peak (no {prec} units; {row.date})"
    if peak:
        return float(peak), f"catalog {row.id} {prec} dense peak ({row.date})"
    return None, f"unknown: catalog {row.id} has no {prec} peak"


def mfu_of(achieved_flops_per_s_per_device: float, device: str, precision: str) -> dict[str, Any]:
    """``mfu``, ``mfu_peak_flops_per_s`` and ``mfu_peak_source``. MFU is never above 100%: when the peak
    would make it so, the peak is wrong, MFU is reported unavailable (None) and ``mfu_unavailable_reason``
    says why."""
    peak, source = mfu_peak(device, precision)
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


def _catalog_device_id(device: str) -> str | None:
    if local_calibration(device) is not None:
        return "local"
    row = catalog_device_for(device)
    return row.id if row is not None else None


def cost_inputs(device: str, cost: CostOptions | None = None) -> CostInputs:
    """Price, PUE and carbon by :func:`mlcost.estimate.context.resolve_hardware` for the catalog row of
    the device in use (the user's values first, then the catalog's, each labelled)."""
    from mlcost.estimate.context import resolve_hardware
    from mlcost.spec import Cluster

    cost = cost or CostOptions()
    catalog = _catalog()
    device_id = _catalog_device_id(device)
    if catalog is None or device_id is None:
        return _cost_inputs_without_row(catalog, device, cost)
    cluster = Cluster(
        device=device_id,
        price_usd_per_device_h=cost.price_usd_per_device_h,
        pue=cost.pue,
        carbon_kg_per_kwh=cost.carbon_kg_per_kwh,
        region=cost.region,
    )
    hw = resolve_hardware(cluster, catalog)
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


def _cost_inputs_without_row(catalog: Any, device: str, cost: CostOptions) -> CostInputs:
    """No catalog row for this device: the user's values, else the catalog's provider-default PUE and the
    region's (or world) carbon intensity — the same rows resolve_hardware falls back to."""
    from mlcost.errors import MlcostError

    if catalog is None:
        raise MlcostError(
            "the catalog could not be loaded, so price, PUE and carbon are unknown",
            hint="check MLCOST_CATALOG / your override files (mlcost catalog check)",
        )
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
    spec: ModelSpec | None, shape: TrainShape, device: str, world_size: int, precision: str, steps: int
) -> dict[str, Any]:
    """The estimator's prediction for the same run: ``step_time_s``, ``model_flops_per_step``,
    ``hardware_flops_per_step``, ``mfu``, ``peak_memory_bytes``, ``tokens_per_s`` and the ``device`` row
    used (``local`` once calibrated). ``{"error": ...}`` when the estimator cannot predict it."""
    if spec is None:
        return {}
    from mlcost.estimate import estimate_train
    from mlcost.spec import Cluster

    device_id = _catalog_device_id(device)
    if device_id is None:
        return {"error": f"no catalog row or calibration for {device}: run 'mlcost calibrate'"}
    try:
        job = runner_job(shape, world_size=world_size, precision=precision, steps=steps)
        est = estimate_train(spec, job, Cluster(device=device_id, count=world_size))
    except Exception as exc:  # a prediction must never stop a measurement
        return {"error": f"{type(exc).__name__}: {exc}"}
    out: dict[str, Any] = {"device": device_id}
    for key in ("step_time_s", "model_flops_per_step", "hardware_flops_per_step", "mfu"):
        value = getattr(est, key, None)
        if isinstance(value, (int, float)):
            out[key] = float(value)
    with contextlib.suppress(Exception):  # the job's own memory per device
        out["peak_memory_bytes"] = float(est.memory.total)
    if out.get("step_time_s"):
        out["tokens_per_s"] = shape.seq_len * job.global_batch / out["step_time_s"]
    return out
