"""``plan_serve``: choose device × TP × batch × weight precision × price row for a serving workload.

Every latency and throughput figure comes from :func:`mlcost.estimate.serve_kernel` (one call per device
over all its TP × batch × precision candidates). The planner adds only the fleet arithmetic:

* demand D (output tokens/s) = requests/s × output length, or tokens/day / 86,400;
* replicas = ceil(D / per-replica output tokens/s); devices = replicas × TP;
* cost per hour = devices × price per device-hour; monthly cost = cost per hour × 720 h (30-day month,
  :data:`mlcost.units.S_PER_MONTH`);
* cost per million output tokens at this demand = cost per hour / (D · 3600) × 10^6 (idle capacity
  included); at full utilisation it equals ``estimate_serve``'s figure;
* utilisation = D / (replicas × per-replica tokens/s);
* energy: devices × TDP × power_frac × PUE over the month (busy power assumed throughout: an upper bound).

Candidates must fit in memory and meet the TTFT and TPOT targets. Ranked by monthly cost, then fewer
devices, then safer weights (bf16 < fp8 < int8 < int4), then lower TPOT. Quality of int8/int4 weights is not modelled: such plans are flagged.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlcost.catalog.protocol import CatalogLike
from mlcost.errors import SpecError, UnknownNameError
from mlcost.estimate.serve import WEIGHT_BYTES, _compute_peak, prefix_cache_assumption, serve_kernel
from mlcost.estimate.serve_step import default_engine
from mlcost.plan.prices import check_places, price_rows
from mlcost.plan.types import ServePlan
from mlcost.spec.job import BYTES_PER_ELEMENT
from mlcost.spec.model import ModelSpec
from mlcost.spec.validate import context_fits
from mlcost.units import J_PER_KWH, S_PER_DAY, S_PER_H, S_PER_MONTH, format_duration

_QUALITY_ORDER = {"fp32": 0, "bf16": 0, "fp16": 0, "fp8": 1, "int8": 2, "int4": 3}
DEFAULT_SERVE_TP: tuple[int, ...] = (1, 2, 4, 8)
DEFAULT_BATCHES: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
DEFAULT_WEIGHT_PRECISIONS: tuple[str, ...] = ("bf16", "fp8", "int8", "int4")
#: Quality risk of a weight format (not modelled: a flag for the reader).
QUALITY_RISK: dict[str, str] = {
    "fp32": "none",
    "bf16": "none",
    "fp16": "none",
    "fp8": "low (fp8 weights; usually close to bf16, check your evals)",
    "int8": "low (weight-only int8; small losses typical, check your evals)",
    "int4": "medium (weight-only int4; measurable losses on some tasks, check your evals)",
}


@dataclass
class ServePlanResult:
    """Outcome of :func:`plan_serve` (docs/plan.md lists every key of :meth:`to_dict`)."""

    status: str
    plans: list[ServePlan]
    infeasible: list[str]
    notes: list[str]
    assumptions: list[dict[str, Any]]
    price_snapshot_date: str
    candidates_evaluated: int
    feasible_plans: int
    elapsed_s: float
    model: str
    demand_output_tokens_per_s: float
    requests_per_s: float
    prompt_len: int
    output_len: int
    ttft_target_s: float | None
    tpot_target_s: float | None
    why: str | None = None
    prefix_share: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "plan-serve",
            "status": self.status,
            "model": self.model,
            "traffic": {
                "requests_per_s": self.requests_per_s,
                "output_tokens_per_s": self.demand_output_tokens_per_s,
                "output_tokens_per_day": self.demand_output_tokens_per_s * S_PER_DAY,
                "prompt_len": self.prompt_len,
                "output_len": self.output_len,
                "prefix_share": self.prefix_share,
            },
            "targets": {"ttft_s": self.ttft_target_s, "tpot_s": self.tpot_target_s},
            "plans": [p.to_dict() for p in self.plans],
            "why": self.why,
            "infeasible": self.infeasible,
            "notes": self.notes,
            "assumptions": self.assumptions,
            "price_snapshot_date": self.price_snapshot_date,
            "candidates_evaluated": self.candidates_evaluated,
            "feasible_plans": self.feasible_plans,
            "elapsed_s": self.elapsed_s,
        }


def check_serve_search(
    cat: CatalogLike,
    model: ModelSpec,
    *,
    context_len: int,
    context_flags: str,
    weight_precisions: Sequence[str],
    kv_precision: str,
    devices: Sequence[str] | None,
    providers: Sequence[str] | None,
    regions: Sequence[str] | None,
) -> tuple[list[Any], tuple[str, ...] | None, tuple[str, ...] | None]:
    """The checks both serving planners make before searching (precisions, context length, places) and the
    devices, providers and regions they search."""
    for wp in weight_precisions:
        if wp not in WEIGHT_BYTES:
            raise SpecError(f"unknown weight precision {wp!r}", hint=f"choose from {', '.join(WEIGHT_BYTES)}")
    if kv_precision not in BYTES_PER_ELEMENT:
        raise SpecError(f"unknown KV-cache precision {kv_precision!r}")
    context_fits(model.name, model.max_seq_len, context_len, context_flags)
    check_places(cat, providers, regions)
    devs = [cat.device(d) for d in devices] if devices is not None else list(cat.devices())
    prov_t = tuple(providers) if providers is not None else None
    reg_t = tuple(regions) if regions is not None else None
    return devs, prov_t, reg_t


def plan_serve(
    model: ModelSpec,
    *,
    prompt_len: int,
    output_len: int,
    requests_per_s: float | None = None,
    tokens_per_day: float | None = None,
    ttft_s: float | None = None,
    tpot_s: float | None = None,
    devices: Sequence[str] | None = None,
    providers: Sequence[str] | None = None,
    regions: Sequence[str] | None = None,
    spot: bool = False,
    weight_precisions: Sequence[str] = DEFAULT_WEIGHT_PRECISIONS,
    tps: Sequence[int] = DEFAULT_SERVE_TP,
    batches: Sequence[int] = DEFAULT_BATCHES,
    kv_precision: str = "bf16",
    top: int = 5,
    catalog: CatalogLike | None = None,
    engine: str | None = None,
    prefix_share: float = 0.0,
    share_prefix_blocks: bool = True,
) -> ServePlanResult:
    """Plan a serving fleet (module docstring). Give exactly one of ``requests_per_s`` and
    ``tokens_per_day`` (output tokens per day). ``prefix_share``/``share_prefix_blocks``: the prefix cache
    of :func:`~mlcost.estimate.serve.serve_kernel` (the hit is not recomputed; its full blocks are held once
    per replica, or once per sequence)."""
    from mlcost.catalog import builtin_catalog

    t0 = time.perf_counter()
    cat = catalog if catalog is not None else builtin_catalog()
    if (requests_per_s is None) == (tokens_per_day is None):
        raise SpecError(
            "give the traffic as exactly one of --requests-per-s and --tokens-per-day",
            hint="e.g. --requests-per-s 5 or --tokens-per-day 1e9 (output tokens)",
        )
    for name, v in (("prompt_len", prompt_len), ("output_len", output_len)):
        if int(v) != v or v < 1:
            raise SpecError(f"{name} must be a positive whole number, got {v!r}")
    if not (math.isfinite(prefix_share) and 0.0 <= prefix_share < 1.0):
        raise SpecError(
            f"--prefix-share must be in [0, 1), got {prefix_share!r}", hint="e.g. --prefix-share 0.8"
        )
    if requests_per_s is not None:
        if not (requests_per_s > 0 and math.isfinite(requests_per_s)):
            raise SpecError(f"--requests-per-s must be positive, got {requests_per_s!r}")
        demand = requests_per_s * output_len
        rps = requests_per_s
    else:
        assert tokens_per_day is not None
        if not (tokens_per_day > 0 and math.isfinite(tokens_per_day)):
            raise SpecError(f"--tokens-per-day must be positive, got {tokens_per_day!r}")
        demand = tokens_per_day / S_PER_DAY
        rps = demand / output_len
    devs, prov_t, reg_t = check_serve_search(
        cat,
        model,
        context_len=prompt_len + output_len,
        context_flags="--prompt-len + --output-len",
        weight_precisions=weight_precisions,
        kv_precision=kv_precision,
        devices=devices,
        providers=providers,
        regions=regions,
    )

    notes: list[str] = []
    unpriced: list[str] = []
    cand: list[dict[str, np.ndarray]] = []
    meta: list[dict[str, Any]] = []
    n_eval = 0
    nothing_fits: list[str] = []
    best_ttft: tuple[float, str] | None = None
    best_tpot: tuple[float, str] | None = None
    assumptions: list[dict[str, Any]] = []
    for dev in devs:
        rows = price_rows(cat, dev.id, providers=prov_t, regions=reg_t, spot=spot, need_price=True)
        if len(rows.pricing) == 0:
            unpriced.append(dev.id)
            continue
        prof = cat.efficiency(dev.id)
        try:
            eng = cat.engine_profile(engine or default_engine(dev), dev)
        except UnknownNameError:
            notes.append(f"no {engine} engine row for {dev.id}: left out")
            continue
        precs: list[str] = []
        peaks: list[float] = []
        fp8c: list[bool] = []
        for wp in weight_precisions:
            if wp == "fp8" and dev.peak_for("fp8") is None:
                continue  # fp8 weights only where the device has fp8 units
            try:
                peak, compute = _compute_peak(dev, wp)
            except SpecError:
                continue
            precs.append(wp)
            peaks.append(peak)
            fp8c.append(compute == "fp8")
        tp_ok = [t for t in tps if t <= dev.devices_per_node and model.n_heads % t == 0]
        if not precs or not tp_ok:
            continue
        grid_t, grid_b, grid_p = np.meshgrid(
            np.asarray(tp_ok, dtype=np.float64),
            np.asarray(batches, dtype=np.float64),
            np.arange(len(precs)),
            indexing="ij",
        )
        T, B, P = grid_t.ravel(), grid_b.ravel(), grid_p.ravel().astype(np.int64)
        wb = np.array([WEIGHT_BYTES[p] for p in precs])[P]
        pk = np.array(peaks)[P]
        f8 = np.array(fp8c)[P]
        r = serve_kernel(
            model,
            prompt_len=prompt_len,
            output_len=output_len,
            batch=B,
            tp=T,
            weight_bytes=wb,
            kv_bytes=BYTES_PER_ELEMENT[kv_precision],
            peak_flops_per_s=pk,
            mem_bw_bytes_per_s=dev.mem_bw_bytes_per_s,
            memory_bytes=dev.memory_bytes,
            devices_per_node=dev.devices_per_node,
            intra_bw_bytes_per_s=dev.intra_node_bw_bytes_per_s,
            inter_bw_bytes_per_s=dev.inter_node_bw_bytes_per_s,
            profile=prof,
            engine=eng,
            fp8_compute=f8,
            prefix_share=prefix_share,
            share_prefix_blocks=share_prefix_blocks,
        )
        n_eval += T.size * len(rows.pricing)
        fits = np.asarray(r["fits"])
        if not fits.any():
            nothing_fits.append(dev.id)
            continue
        ttft = np.asarray(r["ttft_s"])
        tpot = np.asarray(r["time_per_output_token_s"])
        i = int(np.flatnonzero(fits)[np.argmin(ttft[fits])])
        if best_ttft is None or ttft[i] < best_ttft[0]:
            best_ttft = (float(ttft[i]), f"{dev.id} TP{int(T[i])} batch {int(B[i])} {precs[P[i]]}")
        ok = fits & (ttft <= ttft_s if ttft_s is not None else True)
        if ok.any():
            i = int(np.flatnonzero(ok)[np.argmin(tpot[ok])])
            if best_tpot is None or tpot[i] < best_tpot[0]:
                best_tpot = (float(tpot[i]), f"{dev.id} TP{int(T[i])} batch {int(B[i])} {precs[P[i]]}")
        ok &= tpot <= tpot_s if tpot_s is not None else True
        idx = np.flatnonzero(ok)
        if idx.size == 0:
            continue
        tok = np.asarray(r["tokens_per_s"])[idx]
        replicas = np.ceil(demand / tok)
        ndev = replicas * T[idx]
        price = rows.usd_per_device_h
        cost_h = ndev[:, None] * price[None, :]
        power_w = dev.tdp_w * prof.power_frac
        energy_month = ndev[:, None] * power_w * rows.pue[None, :] * S_PER_MONTH / J_PER_KWH
        shape = cost_h.shape
        cand.append(
            {
                "dev": np.full(shape, len(meta)).ravel(),
                "k": np.broadcast_to(idx[:, None], shape).ravel(),
                "row": np.broadcast_to(np.arange(len(price))[None, :], shape).ravel(),
                "cost_h": cost_h.ravel(),
                "ndev": np.broadcast_to(ndev[:, None], shape).ravel(),
                "replicas": np.broadcast_to(replicas[:, None], shape).ravel(),
                "tpot": np.broadcast_to(tpot[idx][:, None], shape).ravel(),
                "quality": np.broadcast_to(
                    np.array([_QUALITY_ORDER.get(p, 9) for p in precs])[P[idx]][:, None], shape
                ).ravel(),
                "energy_month": energy_month.ravel(),
                "co2_month": (energy_month * rows.carbon_kg_per_kwh[None, :]).ravel(),
            }
        )
        meta.append(
            {
                "device": dev,
                "profile": prof,
                "kernel": r,
                "tp": T,
                "batch": B,
                "prec": P,
                "precs": precs,
                "peaks": peaks,
                "rows": rows,
            }
        )
        assumptions.append(
            {
                "name": f"efficiency_profile[{dev.id}]",
                "value": prof.device,
                "source": f"{prof.source} ({prof.date}); error band ±{prof.error_band_rel:.0%}",
            }
        )

    if unpriced:
        notes.append(
            f"no price for {', '.join(unpriced)}"
            + (" at the allowed providers/regions" if (providers or regions) else " in the catalog")
            + ": they cannot be ranked by cost and were left out"
        )
    c = {k: np.concatenate([d[k] for d in cand]) for k in cand[0]} if cand else {}
    infeasible: list[str] = []
    plans: list[ServePlan] = []
    n_feas = int(c["cost_h"].size) if c else 0
    if not c:
        if nothing_fits and best_ttft is None:
            infeasible.append(
                f"the model does not fit on {', '.join(nothing_fits)} with TP up to {max(tps)} and the weight formats "
                f"{', '.join(weight_precisions)} (plus the KV cache of one request of {prompt_len + output_len} tokens)"
            )
        if best_ttft is not None and ttft_s is not None and best_ttft[0] > ttft_s:
            infeasible.append(
                f"no plan reaches a time to first token of {ttft_s * 1e3:.0f} ms: the lowest is "
                f"{best_ttft[0] * 1e3:.0f} ms ({best_ttft[1]}); raise --ttft-ms to ≥ {math.ceil(best_ttft[0] * 1e3)} "
                "or shorten the prompt"
            )
        elif best_tpot is not None and tpot_s is not None and best_tpot[0] > tpot_s:
            infeasible.append(
                f"no plan reaches a time per output token of {tpot_s * 1e3:.1f} ms"
                + (f" within the {ttft_s * 1e3:.0f} ms TTFT target" if ttft_s is not None else "")
                + f": the lowest is {best_tpot[0] * 1e3:.1f} ms ({best_tpot[1]}); raise --tpot-ms to ≥ "
                f"{math.ceil(best_tpot[0] * 1e4) / 10:g}"
            )
        if not infeasible:
            infeasible.append("no allowed device has a price" if unpriced else "no device to plan on")
    else:
        order = np.lexsort((np.arange(n_feas), c["tpot"], c["quality"], c["ndev"], c["cost_h"]))[:top]
        for rank, i in enumerate(order):
            plans.append(_serve_plan(meta, c, int(i), rank + 1, demand, output_len, prompt_len, kv_precision))
    why = None
    if len(plans) >= 2:
        a, b = plans[0].to_dict(), plans[1].to_dict()
        diff = [f"{k} {a[k]} vs {b[k]}" for k in ServePlan.choice_keys() if a[k] != b[k]]
        why = (
            f"#1 and #2 differ in: {'; '.join(diff) or 'nothing but ties'}. #1 costs ${a['monthly_cost_usd']:,.0f}/month "
            f"vs ${b['monthly_cost_usd']:,.0f} with {a['devices']} vs {b['devices']} devices "
            f"({a['replicas']} vs {b['replicas']} replicas of {a['tokens_per_s_per_replica']:,.0f} vs "
            f"{b['tokens_per_s_per_replica']:,.0f} tokens/s) at ${a['price_usd_per_device_h']:g} vs "
            f"${b['price_usd_per_device_h']:g} per device-hour."
        )
        if a["monthly_cost_usd"] == b["monthly_cost_usd"]:
            why += (
                " Same cost: ties go to fewer devices, then safer weights (bf16 < fp8 < int8 < int4), then lower "
                f"TPOT ({a['time_per_output_token_s'] * 1e3:.2f} vs {b['time_per_output_token_s'] * 1e3:.2f} ms)."
            )
    fixed: list[dict[str, Any]] = [
        {"name": "month", "value": S_PER_MONTH / S_PER_H, "source": "30-day billing month (hours)"},
        {
            "name": "batching",
            "value": "static",
            "source": "estimate_serve: the batch is prefilled together and "
            "decoded in lock-step; queueing delay is not modelled",
        },
        {
            "name": "kv_precision",
            "value": kv_precision,
            "source": "default" if kv_precision == "bf16" else "user",
        },
        {
            "name": "quality",
            "value": "not modelled",
            "source": "fp8/int8/int4 weights are flagged with a quality risk",
        },
        {
            "name": "power",
            "value": "TDP × power_frac of the profile",
            "source": "busy power all month (upper bound)",
        },
    ]
    assumptions = [*fixed, *assumptions]
    if prefix_share > 0.0:
        assumptions.append(prefix_cache_assumption(prefix_share, share_prefix_blocks).to_dict())
    if spot:
        notes.append("spot serving: interruptions are assumed absorbed by spare capacity (not modelled)")
    return ServePlanResult(
        status="ok" if plans else "infeasible",
        plans=plans,
        infeasible=infeasible,
        notes=notes,
        assumptions=assumptions,
        price_snapshot_date=cat.price_snapshot_date,
        candidates_evaluated=n_eval,
        feasible_plans=n_feas,
        elapsed_s=time.perf_counter() - t0,
        model=model.name,
        demand_output_tokens_per_s=demand,
        requests_per_s=rps,
        prompt_len=prompt_len,
        output_len=output_len,
        ttft_target_s=ttft_s,
        tpot_target_s=tpot_s,
        why=why,
        prefix_share=prefix_share,
    )


def _serve_plan(
    meta: list[dict[str, Any]],
    c: dict[str, np.ndarray],
    i: int,
    rank: int,
    demand: float,
    output_len: int,
    prompt_len: int,
    kv_precision: str,
) -> ServePlan:
    m = meta[int(c["dev"][i])]
    k = int(c["k"][i])
    r = int(c["row"][i])
    rows = m["rows"]
    kern = m["kernel"]
    tp = int(m["tp"][k])
    wp = m["precs"][int(m["prec"][k])]
    tok = float(kern["tokens_per_s"][k])
    replicas = int(c["replicas"][i])
    price = float(rows.usd_per_device_h[r])
    cost_h = float(c["cost_h"][i])
    return ServePlan(
        **{
            "rank": rank,
            "device": m["device"].id,
            "tp": tp,
            "batch": int(m["batch"][k]),
            "weight_precision": wp,
            "kv_precision": kv_precision,
            "replicas": replicas,
            "devices": int(c["ndev"][i]),
            "provider": rows.provider[r],
            "region": rows.region[r],
            "pricing": rows.pricing[r],
            "price_usd_per_device_h": price,
            "ttft_s": float(kern["ttft_s"][k]),
            "time_per_output_token_s": float(kern["time_per_output_token_s"][k]),
            "request_latency_s": float(kern["request_latency_s"][k]),
            "tokens_per_s_per_replica": tok,
            "capacity_output_tokens_per_s": tok * replicas,
            "utilisation": demand / (tok * replicas),
            "cost_per_hour_usd": cost_h,
            "monthly_cost_usd": cost_h * S_PER_MONTH / S_PER_H,
            "cost_per_million_output_tokens_usd": cost_h / (demand * S_PER_H) * 1e6,
            "cost_per_million_output_tokens_at_full_utilisation_usd": tp * price / (tok * S_PER_H) * 1e6,
            "energy_kwh_per_month": float(c["energy_month"][i]),
            "co2_kg_per_month": float(c["co2_month"][i]),
            "memory_per_device_bytes": float(kern["memory_total_bytes"][k]),
            "memory_capacity_bytes": float(m["device"].memory_bytes),
            "max_batch": int(kern["max_batch"][k]),
            "bound": "memory" if bool(kern["memory_bound"][k]) else "compute",
            "quality_risk": QUALITY_RISK.get(wp, "unknown"),
            "prompt_len": prompt_len,
            "output_len": output_len,
            "latency_text": f"TTFT {format_duration(float(kern['ttft_s'][k]))}, "
            f"TPOT {format_duration(float(kern['time_per_output_token_s'][k]))}",
        }
    )
