"""Explanations: why #1 beats #2, why nothing is feasible (and what would make it so), and the plan's
assumptions with their sources."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlcost.plan.candidates import CandidateTable, DeviceEval, evaluate_device, layout_text
from mlcost.plan.ranking import OBJECTIVE_KEYS
from mlcost.plan.space import device_counts
from mlcost.plan.spot import SpotModel
from mlcost.plan.types import TrainPlan
from mlcost.spec.model import ModelSpec
from mlcost.units import format_bytes, format_duration

#: fastest-plan search beyond --max-devices for the "raise --max-devices" advice: up to this factor.
ADVICE_COUNT_FACTOR = 64


def short(evals: Sequence[DeviceEval], c: CandidateTable, i: int) -> str:
    ev = evals[int(c.dev[i])]
    j, r = int(c.lay[i]), int(c.row[i])
    where = (
        ""
        if ev.rows.provider[r] is None
        else f" {ev.rows.provider[r]} {ev.rows.region[r]} {ev.rows.pricing[r]}"
    )
    return f"{int(ev.layouts.count[j])}× {ev.hw.device.id}, {layout_text(ev.layouts, j)}{where}"


def explain_no_fit(
    evals: Sequence[DeviceEval], model: ModelSpec, max_devices: int, unpriced: list[str], no_units: list[str]
) -> list[str]:
    out = []
    for ev in evals:
        if ev.n_layouts == 0:
            out.append(
                f"no valid layout on {ev.hw.device.id} within {max_devices} devices (TP must divide the "
                f"{model.n_heads} heads, PP the {model.n_layers} layers, DP·micro-batch the global batch)"
            )
        elif ev.best_memory is not None:
            need, how = ev.best_memory
            out.append(
                f"no plan fits in memory on {ev.hw.device.id}: the smallest need is {format_bytes(need)} per device "
                f"({how}) vs {format_bytes(ev.hw.device.memory_bytes)}; raise --max-devices (more sharding) or "
                "use a device with more memory"
            )
    if not evals:
        if unpriced:
            out.append(
                f"no allowed device has a price ({', '.join(unpriced)}); rank by --objective time/energy/co2, "
                "drop --budget-usd, or add prices in an override file"
            )
        if no_units:
            out.append(f"no allowed device supports the precisions asked for: {', '.join(no_units)}")
        if not unpriced and not no_units:
            out.append("no device to plan on")
    return out


def explain_deadline(
    model: ModelSpec,
    c: CandidateTable,
    evals: Sequence[DeviceEval],
    *,
    deadline_s: float,
    max_devices: int,
    search: Any,
    tokens: float,
    seq_len: int,
    gb: int,
) -> str:
    """Why nothing meets the deadline, with the count (checked with the kernel) that would."""
    i = int(np.argmin(np.where(c.available, c.time_s, np.inf)))
    fastest = float(c.time_s[i])
    msg = (
        f"nothing meets a {format_duration(deadline_s)} deadline: the fastest plan within "
        f"{max_devices} devices takes {format_duration(fastest)} ({short(evals, c, i)})"
    )
    best: tuple[int, str] | None = None
    if search.counts is None:
        for ev in evals:
            if ev.n_layouts == 0:
                continue
            counts = [
                n
                for n in device_counts(max_devices * ADVICE_COUNT_FACTOR, ev.hw.devices_per_node)
                if n > max_devices
            ]
            if not counts:
                continue
            lay, r = evaluate_device(
                model,
                ev.hw,
                counts=counts,
                search=search,
                tokens=tokens,
                seq_len=seq_len,
                global_batch=gb,
                precisions=ev.layouts.precisions,
            )
            if len(lay) == 0:
                continue
            good = np.asarray(r["fits"]) & (np.asarray(r["total_time_s"]) <= deadline_s)
            if good.any():
                n_min = int(lay.count[good].min())
                if best is None or n_min < best[0]:
                    best = (n_min, ev.hw.device.id)
    parts = []
    if best is not None:
        parts.append(f"raise --max-devices to ≥ {best[0]} ({best[1]})")
    parts.append(f"the deadline to ≥ {format_duration(fastest * 1.0001)}")
    if best is None and search.counts is None:
        msg += (
            f" (no layout up to {max_devices * ADVICE_COUNT_FACTOR} devices meets it: the global batch "
            f"of {gb} sequences limits data parallelism)"
        )
    return msg + "; raise " + " or ".join(parts)


def explain_cap(
    c: CandidateTable,
    ok: np.ndarray,
    evals: Sequence[DeviceEval],
    key: str,
    cap: float,
    deadline_s: float | None,
) -> str:
    """Why nothing passes the budget (``cost_usd``) or emissions (``co2_kg``) cap."""
    m = c.metric(key)
    i = int(np.flatnonzero(ok)[np.nanargmin(m[ok])])
    if key == "cost_usd":
        return (
            f"nothing costs at most ${cap:,.0f}"
            + (f" within the {format_duration(deadline_s)} deadline" if deadline_s else "")
            + f": the cheapest plan costs ${m[i]:,.0f} ({short(evals, c, i)}); "
            f"raise --budget-usd to ≥ {math.ceil(m[i]):,}" + (" or relax the deadline" if deadline_s else "")
        )
    return (
        f"nothing emits at most {cap:,.0f} kg CO2e under the other constraints: the "
        f"lowest-emission plan emits {m[i]:,.0f} kg ({short(evals, c, i)}); raise --max-co2-kg "
        f"to ≥ {math.ceil(m[i]):,} or allow cleaner regions/providers"
    )


def _pct(a: float, b: float) -> str:
    return f"{(b - a) / b * 100:.1f}%" if b else "-"


def why(a: TrainPlan, b: TrainPlan, objective: str, w: dict[str, float]) -> str:
    """The decisive difference between plan #1 and #2, in words and numbers."""
    diff = [
        f"{k} {getattr(a, k)} vs {getattr(b, k)}"
        for k in TrainPlan.choice_keys()
        if getattr(a, k) != getattr(b, k)
    ]
    head = f"#1 and #2 differ in: {'; '.join(diff) if diff else 'the same configuration'}. "
    ta, tb, ca, cb = a.total_time_s, b.total_time_s, a.cost_usd, b.cost_usd
    if objective == "cost" and ca is not None and cb is not None:
        if ca == cb:
            return (
                head
                + f"They cost the same (${ca:,.0f}); #1 is first on time ({format_duration(ta)} vs {format_duration(tb)})."
            )
        dh_a, dh_b = a.device_hours, b.device_hours
        pa, pb = a.price_usd_per_device_h, b.price_usd_per_device_h
        text = head + f"#1 costs ${ca:,.0f} vs ${cb:,.0f} ({_pct(ca, cb)} less). "
        if a.pricing == "spot" or b.pricing == "spot":
            text += "Spot plans carry interruptions (expected cost). "
        ratio_dh = dh_b / dh_a if dh_a else float("nan")
        ratio_p = (pb / pa) if (pa and pb) else float("nan")
        if abs(math.log(ratio_dh)) >= abs(math.log(ratio_p)) if ratio_dh > 0 and ratio_p > 0 else True:
            text += (
                f"Decisive: device-hours {dh_a:,.0f} vs {dh_b:,.0f} ({_pct(dh_a, dh_b)} fewer; MFU {a.mfu:.1%} vs "
                f"{b.mfu:.1%}, step {a.step_time_s:.3g} s vs {b.step_time_s:.3g} s on {a.count} vs "
                f"{b.count} devices)"
            )
            if pa != pb:
                text += f"; price per device-hour ${pa:g} vs ${pb:g}"
            return text + "."
        return text + (
            f"Decisive: price per device-hour ${pa:g} vs ${pb:g} ({a.provider} {a.region} {a.pricing} vs "
            f"{b.provider} {b.region} {b.pricing}); device-hours {dh_a:,.0f} vs {dh_b:,.0f}."
        )
    if objective == "time":
        return head + (
            f"#1 takes {format_duration(ta)} vs {format_duration(tb)} ({_pct(ta, tb)} less): throughput "
            f"{a.tokens_per_s:,.0f} vs {b.tokens_per_s:,.0f} tokens/s (MFU {a.mfu:.1%} vs {b.mfu:.1%} "
            f"on {a.count} vs {b.count} devices)."
        )
    if objective in ("energy", "co2"):
        key, unit = ("energy_kwh", "kWh") if objective == "energy" else ("co2_kg", "kg CO2e")
        va, vb = getattr(a, key), getattr(b, key)
        text = head + f"#1 uses {va:,.0f} {unit} vs {vb:,.0f} ({_pct(va, vb)} less)"
        if objective == "co2" and a.carbon_kg_per_kwh != b.carbon_kg_per_kwh:
            text += (
                f"; grid carbon {a.carbon_kg_per_kwh:g} vs {b.carbon_kg_per_kwh:g} kg/kWh "
                f"({a.region} vs {b.region})"
            )
        return text + f"; energy {a.energy_kwh:,.0f} vs {b.energy_kwh:,.0f} kWh (PUE {a.pue:g} vs {b.pue:g})."
    parts = []
    for key in w:
        col = OBJECTIVE_KEYS[key]
        va, vb = getattr(a, col), getattr(b, col)
        if va is not None and vb is not None:
            parts.append(f"{key} {va:,.4g} vs {vb:,.4g}")
    return head + "Weighted score favours #1: " + ", ".join(parts) + "."


def assumptions(
    cat: Any,
    plans: Sequence[TrainPlan],
    defaults: Any,
    search: Any,
    cons: Any,
    spot: SpotModel,
    profiles_used: dict[str, Any],
) -> list[dict[str, Any]]:
    """What the plans assume, each with its source. Price rows: those of the listed plans."""
    out: list[dict[str, Any]] = []

    def add(name: str, value: Any, source: str) -> None:
        out.append({"name": name, "value": value, "source": source})

    add("seq_len", defaults.seq_len, defaults.seq_len_source)
    add("global_batch", defaults.global_batch, defaults.global_batch_source)
    add("optimizer", search.optimizer, "mixed precision keeps fp32 master weights and AdamW states")
    add(
        "precisions",
        list(search.precisions),
        "bf16 runs as fp16 with loss scaling on devices without bf16 "
        "units; fp8 only on devices listing fp8 units: linear layers in fp8 at 88% of bf16's fraction of "
        "peak (achievable-matmul ratio), attention in bf16, bf16 activations and fp32 master weights "
        "(Transformer Engine style); its convergence is "
        "assumed equal to bf16 (not modelled)"
        if "fp8" in search.precisions
        else "user",
    )
    add(
        "pipeline_schedule",
        f"1F1B, interleaved with virtual stages {list(search.virtual_stages)} when PP > 1",
        "Narayanan et al. 2021 (interleaving needs micro-batches per step divisible by PP, as Megatron-LM)",
    )
    add(
        "sequence_parallel",
        "on when TP > 1" if search.sequence_parallel is None else search.sequence_parallel,
        "Megatron sequence parallelism (Korthikanti et al. 2022)",
    )
    add("flash_attention", search.flash_attention, "fused attention, no s×s scores stored")
    add(
        "goodput",
        search.goodput,
        "share of wall time in useful steps (1.0: failures, restarts and evaluation "
        "not counted; spot interruptions are modelled separately)",
    )
    add(
        "overlap_grad_reduce",
        search.overlap_grad_reduce,
        "gradient communication overlapped with backward up to the profile's dp_overlap",
    )
    add("tp_within_node", True, "TP groups never span nodes")
    family = search.framework
    for dev_id, p in profiles_used.items():
        own = dev_id if family is None else f"{dev_id}/{family}"
        missing = "fallback" if family is None else f"no {family} profile for {dev_id}"
        add(
            f"efficiency_profile[{dev_id}]",
            p.device if p.device == own else f"{p.device} ({missing})",
            f"{p.source} ({p.date}); error band ±{p.error_band_rel:.0%}",
        )
    seen = set()
    for pl in plans:
        if pl.provider is None:
            add(f"price[{pl.device}]", None, "no price in the catalog")
            continue
        key = (pl.device, pl.provider, pl.region, pl.pricing)
        if key in seen:
            continue
        seen.add(key)
        add(
            f"price[{'/'.join(str(x) for x in key)}]",
            pl.price_usd_per_device_h,
            f"{pl.instance}: {pl.price_source}",
        )
        add(f"carbon[{pl.provider}/{pl.region}]", pl.carbon_kg_per_kwh, pl.carbon)
    add(
        "price_rows",
        "per device: the cheapest row per provider/region/pricing; rows beaten on price, PUE and PUE×carbon "
        "by another row are not searched",
        "mlcost.plan.prices (cannot change the best plan for any objective or cap)",
    )
    add(
        "pue_carbon",
        "per provider/region",
        "catalog providers.csv and carbon.csv (region → country average → provider)",
    )
    if cons.spot:
        add(
            "spot_model",
            spot.to_dict(),
            "expected time T·(1 + r·nodes·(restart + checkpoint/2)); deadline "
            "kept by an on-demand fallback (docs/plan.md)",
        )
    add(
        "counts",
        "powers of two and ×1.5, whole nodes from one node up"
        if search.counts is None
        else list(search.counts),
        f"up to --max-devices {cons.max_devices}",
    )
    return out
