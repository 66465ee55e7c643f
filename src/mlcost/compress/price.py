"""What a variant costs to serve: per million requests on this machine (from the measured throughput) and on
a target device through mlcost's serving estimator (for the variant's shape and precision).

This machine's price: ``--price-usd-per-h`` when given, else the catalog's price row for this CPU's device row
when the catalog has one; else no dollar figure is claimed and the cost is given in machine-hours per million
requests (which ranks the variants identically, since they all run on the same machine). Either way the
assumption is stated in the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlcost.units import S_PER_H


@dataclass(frozen=True)
class MachinePrice:
    """This machine's hourly price (None when unknown) and where it came from."""

    usd_per_h: float | None
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"usd_per_h": self.usd_per_h, "source": self.source}


def _catalog_cpu_price(catalog: Any = None) -> tuple[float, str] | None:
    """The catalog price of this CPU's row (host matching by vendor and ISA), if the catalog has both."""
    from mlcost.catalog import builtin_catalog
    from mlcost.catalog.host import detect_host, match_cpu_row
    from mlcost.errors import MlcostError

    cat = catalog if catalog is not None else builtin_catalog()
    match = match_cpu_row(cat, detect_host())
    if match is None:
        return None
    try:
        price = cat.price(match.row.device)
    except MlcostError:  # the row has no price: the caller states that no price is known
        return None
    return (
        float(price.usd_per_device_h),
        f"catalog price of {match.row.device} ({price.provider}, {price.pricing}; {match.label})",
    )


def machine_price(usd_per_h: float | None = None, *, catalog: Any = None) -> MachinePrice:
    if usd_per_h is not None:
        return MachinePrice(float(usd_per_h), "--price-usd-per-h (given by the user)")
    found = _catalog_cpu_price(catalog)
    if found is not None:
        return MachinePrice(*found)
    return MachinePrice(
        None,
        "no price for this machine in the catalog and no --price-usd-per-h: costs are in machine-hours per "
        "million requests (multiply by your hourly price)",
    )


def local_cost(throughput_per_s: float, price: MachinePrice) -> dict[str, float | None]:
    """Machine-hours and dollars per million requests at ``throughput_per_s`` (requests/s, the machine busy)."""
    hours = 1e6 / throughput_per_s / S_PER_H
    return {
        "machine_h_per_million_requests": hours,
        "usd_per_million_requests": None if price.usd_per_h is None else hours * price.usd_per_h,
    }


# ---------------------------------------------------------------- target devices
PRECISION_FOR_ESTIMATE = {"fp32": "fp32", "bf16": "bf16", "fp16": "fp16", "int8": "int8"}


def target_cost(
    hf_config: dict[str, Any] | None,
    shape: dict[str, int] | None,
    precision: str,
    *,
    device: str,
    seq_len: int,
    batch: int,
    name: str,
    catalog: Any = None,
) -> dict[str, Any]:
    """Cost per million requests on ``device`` from the estimator, for a transformer variant.

    A request is one sequence of ``seq_len`` tokens through the model (an encoder's embedding, or scoring a
    window with a language model): a prefill of ``seq_len`` tokens and one output token."""
    if not hf_config:
        return {
            "device": device,
            "status": "not estimated",
            "reason": "the estimator models transformers only",
        }
    try:
        spec = _spec(hf_config, shape, name)
        est = _estimate(
            spec, device=device, seq_len=seq_len, batch=batch, precision=precision, catalog=catalog
        )
    except (
        Exception
    ) as exc:  # MlcostError (unknown device, shape the estimator refuses) or a config it cannot read
        return {"device": device, "status": "not estimated", "reason": str(exc)}
    return {"device": device, "status": "ok", **est}


def _spec(hf_config: dict[str, Any], shape: dict[str, int] | None, name: str) -> Any:
    from mlcost.spec import ModelSpec

    spec = ModelSpec.from_hf_config(hf_config, name=name)
    if shape:
        changes: dict[str, Any] = dict(shape)
        if "n_heads" in changes:
            changes["head_dim"] = spec.dim_head
            changes["n_kv_heads"] = None
        spec = spec.replace(**changes)
    return spec


def _estimate(
    spec: Any, *, device: str, seq_len: int, batch: int, precision: str, catalog: Any = None
) -> dict[str, Any]:
    """The one call into mlcost.estimate's serving model."""
    from mlcost.estimate import estimate_serve
    from mlcost.spec import Cluster, ServeJob

    seq = min(seq_len, spec.max_seq_len - 1)
    job = ServeJob(
        prompt_len=seq,
        output_len=1,
        batch=batch,
        weight_precision=PRECISION_FOR_ESTIMATE[precision],  # type: ignore[arg-type]
        kv_precision="bf16" if precision in ("int8", "bf16") else ("fp16" if precision == "fp16" else "fp32"),  # type: ignore[arg-type]
    )
    est = estimate_serve(spec, job, Cluster(device=device), catalog=catalog)
    requests_per_s = batch / est.request_latency_s
    per_h = est.cost_per_hour_usd
    return {
        "requests_per_s": requests_per_s,
        "usd_per_million_requests": None if per_h is None else per_h / (requests_per_s * S_PER_H) * 1e6,
        "usd_per_h": per_h,
        "bound": est.bound,
        "assumption": f"estimate_serve: prompt {seq} tokens + 1 output token, batch {batch}, "
        f"{job.weight_precision} weights; error band ±{est.error_band.relative:.0%}",
    }


def break_even_requests(
    training_time_s: float, baseline_h_per_million: float, student_h_per_million: float
) -> float | None:
    """Requests after which the machine time a cheaper student saves pays back its training time (the same
    machine trains and serves, so the price cancels out); None when the student is not cheaper to serve."""
    saved_h_per_request = (baseline_h_per_million - student_h_per_million) / 1e6
    if saved_h_per_request <= 0:
        return None
    return training_time_s / S_PER_H / saved_h_per_request
