"""``plan_train``: search device × count × TP/PP/DP × ZeRO × micro-batch × recomputation × precision ×
provider/region/pricing for a training job, drop what does not fit or breaks a constraint, rank by an
objective, and explain the answer.

Method (every number comes from :func:`mlcost.estimate.train_kernel`, the estimator's own kernel):

1. per device, build all valid layouts as index arrays (:mod:`mlcost.plan.space`) and evaluate the
   kernel once over them, with price, PUE and carbon set to 1;
2. keep the layouts that fit in memory;
3. expand over the device's price rows: cost = device-hours × price, energy × PUE, CO2 × PUE × carbon
   (the kernel is linear in them), spot rows through :mod:`mlcost.plan.spot`;
4. filter deadline → budget → CO2 cap; when a filter empties the set, say which plan came closest and
   what would make it feasible;
5. rank by the objective (cost, time, energy, CO2 or a weighted mix of their ratios to the best), report
   the top plans, the Pareto front over (time, cost), and why #1 beats #2.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlcost.errors import SpecError, UnknownNameError
from mlcost.estimate.kernel import train_kernel
from mlcost.estimate.params import count_params
from mlcost.plan.pareto import pareto_front
from mlcost.plan.space import (
    DEFAULT_MICRO_BATCH,
    DEFAULT_RECOMPUTE,
    DEFAULT_TP,
    DEFAULT_ZERO,
    RECOMPUTE_NAMES,
    DeviceHardware,
    build_train_inputs,
    default_global_batch,
    device_counts,
    enumerate_layouts,
    pipeline_degrees,
    train_precisions,
)
from mlcost.plan.spot import DEFAULT_SPOT, SpotModel, spot_expected_time_s, spot_schedule
from mlcost.spec.cluster import Cluster
from mlcost.spec.job import TrainJob
from mlcost.spec.model import ModelSpec
from mlcost.spec.validate import context_fits
from mlcost.units import S_PER_H, format_bytes, format_duration

OBJECTIVES: tuple[str, ...] = ("cost", "time", "energy", "co2", "mix")
#: metric key of each single objective
OBJECTIVE_KEYS: dict[str, str] = {
    "cost": "cost_usd",
    "time": "total_time_s",
    "energy": "energy_kwh",
    "co2": "co2_kg",
}
#: the largest training sequence length the planner picks by default. Units: tokens.
DEFAULT_MAX_SEQ_LEN = 4096
#: fastest-plan search beyond --max-devices for the "raise --max-devices" advice: up to this factor.
ADVICE_COUNT_FACTOR = 64


@dataclass(frozen=True, kw_only=True)
class TrainConstraints:
    """What a plan must satisfy. ``None`` means no limit.

    Attributes:
        deadline_s: wall-clock limit of the run. Units: s.
        budget_usd: cost limit (expected cost for spot plans). Units: USD.
        max_devices: most devices in one plan.
        devices: allowed catalog device ids (all devices if None).
        providers / regions: allowed price rows (``*`` is a provider-wide region).
        spot: whether spot price rows may be used.
        max_co2_kg: emissions cap. Units: kg CO2e.
    """

    deadline_s: float | None = None
    budget_usd: float | None = None
    max_devices: int = 1024
    devices: tuple[str, ...] | None = None
    providers: tuple[str, ...] | None = None
    regions: tuple[str, ...] | None = None
    spot: bool = False
    max_co2_kg: float | None = None


@dataclass(frozen=True, kw_only=True)
class TrainSearch:
    """The search space (module :mod:`mlcost.plan.space` documents the defaults).

    Attributes:
        seq_len: tokens per sequence (default min(model max, 4096)).
        global_batch: sequences per step (default ~4M tokens for ≥ 7B parameters, ~1M below).
        precisions: training precisions tried (fp8 only on devices with fp8 units; fp32 off by default).
        tps / pps / zeros / micro_batches / recomputes: candidate values (pps: powers of two dividing layers).
        counts: device counts (default powers of two and ×1.5 up to max_devices, whole nodes from one node up).
        optimizer: adamw or sgd.
        sequence_parallel: None = on whenever TP > 1.
        flash_attention: fused attention (on by default).
        overlap_grad_reduce: the framework overlaps gradient communication with backward (on by default).
        goodput: share of wall time in useful steps (1.0: failures/restarts/evaluation not counted).
    """

    seq_len: int | None = None
    global_batch: int | None = None
    precisions: tuple[str, ...] = ("bf16", "fp8")
    tps: tuple[int, ...] = DEFAULT_TP
    pps: tuple[int, ...] | None = None
    zeros: tuple[int, ...] = DEFAULT_ZERO
    micro_batches: tuple[int, ...] = DEFAULT_MICRO_BATCH
    recomputes: tuple[str, ...] = DEFAULT_RECOMPUTE
    counts: tuple[int, ...] | None = None
    optimizer: str = "adamw"
    sequence_parallel: bool | None = None
    flash_attention: bool = True
    overlap_grad_reduce: bool = True
    goodput: float = 1.0


@dataclass
class TrainPlanResult:
    """Outcome of :func:`plan_train`. ``plans`` are ranked dicts (see :func:`_plan_dict` / docs/plan.md)."""

    status: str  # "ok" or "infeasible"
    objective: str
    plans: list[dict[str, Any]]
    pareto: list[dict[str, Any]]
    why: str | None
    infeasible: list[str]
    notes: list[str]
    assumptions: list[dict[str, Any]]
    price_snapshot_date: str
    price_date_range: tuple[str, str]
    candidates_evaluated: int
    layouts_evaluated: int
    feasible_plans: int
    elapsed_s: float
    model: str
    tokens: float
    seq_len: int
    global_batch: int
    constraints: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of ``mlcost plan train --json`` (docs/plan.md)."""
        return {
            "kind": "plan-train",
            "status": self.status,
            "model": self.model,
            "tokens": self.tokens,
            "seq_len": self.seq_len,
            "global_batch": self.global_batch,
            "objective": self.objective,
            "constraints": self.constraints,
            "plans": self.plans,
            "pareto": self.pareto,
            "why": self.why,
            "infeasible": self.infeasible,
            "notes": self.notes,
            "assumptions": self.assumptions,
            "price_snapshot_date": self.price_snapshot_date,
            "price_date_range": list(self.price_date_range),
            "candidates_evaluated": self.candidates_evaluated,
            "layouts_evaluated": self.layouts_evaluated,
            "feasible_plans": self.feasible_plans,
            "elapsed_s": self.elapsed_s,
        }


@dataclass(frozen=True)
class _PriceRows:
    """Price rows of one device (arrays, one entry per row) with their PUE, carbon and fallback row."""

    provider: list[str | None]
    region: list[str | None]
    pricing: list[str]
    instance: list[str]
    usd_per_device_h: np.ndarray  # NaN: no price
    pue: np.ndarray
    carbon_kg_per_kwh: np.ndarray
    fallback: np.ndarray  # index of the on-demand row a spot row falls back to; -1 for none / on-demand rows
    notes: list[str]


def parse_weights(text: str | None) -> dict[str, float]:
    """``"cost=1,time=0.5"`` → {"cost": 1.0, "time": 0.5}; default cost=1, time=1."""
    if not text:
        return {"cost": 1.0, "time": 1.0}
    out: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in OBJECTIVE_KEYS:
            raise SpecError(
                f"cannot read weight {part.strip()!r}",
                hint=f"write --weights key=value,... with keys from {', '.join(OBJECTIVE_KEYS)}",
            )
        try:
            w = float(value)
        except ValueError:
            raise SpecError(f"weight {key} is not a number: {value!r}") from None
        if not math.isfinite(w) or w < 0:
            raise SpecError(f"weight {key} must be a non-negative number, got {value!r}")
        out[key] = w
    if not any(out.values()):
        raise SpecError("all --weights are zero", hint="give at least one positive weight")
    return out


def _price_rows(cat: Any, device_id: str, cons: TrainConstraints, need_price: bool) -> _PriceRows:
    return price_rows(
        cat, device_id, providers=cons.providers, regions=cons.regions, spot=cons.spot, need_price=need_price
    )


def price_rows(
    cat: Any,
    device_id: str,
    *,
    providers: tuple[str, ...] | None,
    regions: tuple[str, ...] | None,
    spot: bool,
    need_price: bool,
) -> _PriceRows:
    """The device's allowed price rows (cheapest row per provider/region/pricing, as ``Catalog.price``
    picks), or one unpriced pseudo-row (default PUE, world carbon) when prices are not needed."""
    rows = cat.prices(device=device_id)
    allowed = ("on-demand", "spot") if spot else ("on-demand",)
    seen: set[tuple[str, str, str]] = set()
    kept = []
    for r in rows:  # cheapest first
        key = (r.provider, r.region, r.pricing)
        if key in seen or r.pricing not in allowed:
            continue
        if providers is not None and r.provider not in providers:
            continue
        if regions is not None and r.region not in regions:
            continue
        seen.add(key)
        kept.append(r)
    notes: list[str] = []
    if not kept:
        if need_price or providers is not None or regions is not None:
            return _PriceRows(
                [], [], [], [], np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64), notes
            )
        pue = cat.pue(None).pue
        carbon = cat.carbon(None, None).kg_co2_per_kwh
        return _PriceRows(
            [None],
            [None],
            ["on-demand"],
            [""],
            np.array([np.nan]),
            np.array([pue]),
            np.array([carbon]),
            np.array([-1]),
            notes,
        )
    prov_list: list[str | None] = [r.provider for r in kept]
    reg_list: list[str | None] = [r.region for r in kept]
    pricing = [r.pricing for r in kept]
    pue = np.array([cat.pue(r.provider).pue for r in kept])
    carbon = np.array(
        [
            cat.carbon(
                zone=r.region if r.region not in (None, "*") else None, provider=r.provider
            ).kg_co2_per_kwh
            for r in kept
        ]
    )
    fallback = np.full(len(kept), -1, dtype=np.int64)
    od = [i for i, r in enumerate(kept) if r.pricing == "on-demand"]
    for i, r in enumerate(kept):
        if r.pricing != "spot":
            continue
        same = [j for j in od if kept[j].provider == r.provider and kept[j].region == r.region]
        if same:
            fallback[i] = same[0]
        elif od:
            fallback[i] = od[0]  # cheapest allowed on-demand row of this device
            notes.append(
                f"{device_id} spot at {r.provider} {r.region}: no on-demand row there; the fallback uses "
                f"{kept[od[0]].provider} {kept[od[0]].region} on-demand"
            )
    return _PriceRows(
        prov_list,
        reg_list,
        pricing,
        [r.instance for r in kept],
        np.array([r.usd_per_device_h for r in kept]),
        pue,
        carbon,
        fallback,
        notes,
    )


@dataclass
class _DeviceEval:
    hw: DeviceHardware
    layouts: Any  # space.Layouts of the fitting layouts
    kernel: dict[str, np.ndarray]  # kernel outputs of the fitting layouts
    rows: _PriceRows
    n_layouts: int
    best_memory: tuple[float, str] | None  # smallest need when nothing fits


def _layout_text(lay: Any, i: int) -> str:
    return (
        f"TP{int(lay.tp[i])} PP{int(lay.pp[i])} DP{int(lay.dp[i])} ZeRO-{int(lay.zero[i])} "
        f"mb{int(lay.micro_batch[i])} recompute {RECOMPUTE_NAMES[int(lay.recompute[i])]} "
        f"{lay.precisions[int(lay.precision[i])]}"
    )


def _evaluate_device(
    model: ModelSpec,
    hw: DeviceHardware,
    *,
    counts: Sequence[int],
    search: TrainSearch,
    tokens: float,
    seq_len: int,
    global_batch: int,
    precisions: Sequence[str],
) -> tuple[Any, dict[str, np.ndarray]]:
    lay = enumerate_layouts(
        model,
        counts=counts,
        devices_per_node=hw.devices_per_node,
        global_batch=global_batch,
        precisions=precisions,
        tps=search.tps,
        pps=search.pps,
        zeros=search.zeros,
        micro_batches=search.micro_batches,
        recomputes=search.recomputes,
    )
    if len(lay) == 0:
        return lay, {}
    x = build_train_inputs(
        model,
        lay,
        hw,
        tokens=tokens,
        seq_len=seq_len,
        global_batch=global_batch,
        optimizer=search.optimizer,
        sequence_parallel=search.sequence_parallel,
        flash_attention=search.flash_attention,
        overlap_grad_reduce=search.overlap_grad_reduce,
        goodput=search.goodput,
    )
    return lay, train_kernel(model, x)


def check_places(cat: Any, providers: Sequence[str] | None, regions: Sequence[str] | None) -> None:
    """Unknown provider or region names raise :class:`UnknownNameError` with close matches."""
    for prov in providers or ():
        if prov not in cat.providers():
            raise UnknownNameError("provider", prov, cat.providers())
    known = set(cat.regions())
    for reg in regions or ():
        if reg not in known:
            raise UnknownNameError("region", reg, known, extra_hint="'*' is a provider-wide price row")


def plan_train(
    model: ModelSpec,
    tokens: float,
    *,
    constraints: TrainConstraints | None = None,
    search: TrainSearch | None = None,
    objective: str = "cost",
    weights: dict[str, float] | None = None,
    spot_model: SpotModel = DEFAULT_SPOT,
    top: int = 5,
    catalog: Any = None,
) -> TrainPlanResult:
    """Plan a training run of ``tokens`` tokens of ``model`` (module docstring)."""
    from mlcost.catalog import get_catalog

    t0 = time.perf_counter()
    cons = constraints or TrainConstraints()
    search = search or TrainSearch()
    cat = catalog or get_catalog()
    if objective not in OBJECTIVES:
        raise SpecError(f"unknown objective {objective!r}", hint=f"choose from {', '.join(OBJECTIVES)}")
    if not (tokens > 0 and math.isfinite(tokens)):
        raise SpecError(f"tokens must be a positive number, got {tokens!r}")
    if cons.max_devices < 1:
        raise SpecError(f"--max-devices must be at least 1, got {cons.max_devices}")
    w = dict(weights or {"cost": 1.0, "time": 1.0}) if objective == "mix" else {objective: 1.0}
    need_price = (
        objective == "cost" or (objective == "mix" and w.get("cost", 0) > 0) or cons.budget_usd is not None
    )
    params = float(count_params(model).total)
    seq_len = search.seq_len or min(model.max_seq_len, DEFAULT_MAX_SEQ_LEN)
    context_fits(model.name, model.max_seq_len, seq_len, "--seq-len")
    gb = search.global_batch or default_global_batch(params, seq_len)
    for p in search.precisions:
        if p not in ("fp32", "tf32", "bf16", "fp16", "fp8"):
            raise SpecError(
                f"unknown training precision {p!r}", hint="choose from fp32, tf32, bf16, fp16, fp8"
            )
    # cat.device raises UnknownNameError with suggestions
    devices = [cat.device(d) for d in cons.devices] if cons.devices is not None else cat.devices()
    check_places(cat, cons.providers, cons.regions)

    notes: list[str] = []
    unpriced: list[str] = []
    no_units: list[str] = []
    evals: list[_DeviceEval] = []
    n_layouts = 0
    n_candidates = 0
    profiles_used: dict[str, str] = {}
    for dev in devices:
        precs = train_precisions(dev, search.precisions)
        if not precs:
            no_units.append(f"{dev.id} (has {', '.join(sorted(dev.peak_flops_per_s))})")
            continue
        rows = _price_rows(cat, dev.id, cons, need_price)
        notes.extend(rows.notes)
        if len(rows.pricing) == 0:
            unpriced.append(dev.id)
            continue
        prof = cat.efficiency(dev.id)
        profiles_used[dev.id] = prof.device if prof.device == dev.id else f"{prof.device} (fallback)"
        hw = DeviceHardware(
            device=dev,
            profile=prof,
            devices_per_node=dev.devices_per_node,
            intra_bw_bytes_per_s=dev.intra_node_bw_bytes_per_s,
            inter_bw_bytes_per_s=dev.inter_node_bw_bytes_per_s,
        )
        counts = (
            list(search.counts) if search.counts else device_counts(cons.max_devices, dev.devices_per_node)
        )
        counts = [c for c in counts if c <= cons.max_devices]
        lay, r = _evaluate_device(
            model,
            hw,
            counts=counts,
            search=search,
            tokens=tokens,
            seq_len=seq_len,
            global_batch=gb,
            precisions=precs,
        )
        n_layouts += len(lay)
        n_candidates += len(lay) * len(rows.pricing)
        if len(lay) == 0:
            evals.append(_DeviceEval(hw, lay, {}, rows, 0, None))
            continue
        fits = r["fits"]
        idx = np.flatnonzero(fits)
        best_mem = None
        if idx.size == 0:
            i = int(np.argmin(r["memory_total_bytes"]))
            best_mem = (
                float(r["memory_total_bytes"][i]),
                f"{int(lay.count[i])} devices, {_layout_text(lay, i)}",
            )
        evals.append(
            _DeviceEval(
                hw, lay.take(idx), {k: np.asarray(v)[idx] for k, v in r.items()}, rows, len(lay), best_mem
            )
        )

    if unpriced:
        what = (
            f"at the allowed providers/regions ({', '.join(cons.providers or ())} {', '.join(cons.regions or ())})".strip()
            if (cons.providers or cons.regions)
            else "in the catalog"
        )
        notes.append(
            f"no price {what} for {', '.join(unpriced)}: "
            + ("they cannot be ranked by cost and were left out" if need_price else "left out")
            + " (add a [[price]] row in an override file to include them)"
        )
    if no_units:
        notes.append(f"no units for {'/'.join(search.precisions)} on: {', '.join(no_units)}")

    # ---- expand over price rows ------------------------------------------------------------------
    cols: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            "dev",
            "lay",
            "row",
            "time",
            "cost",
            "energy",
            "co2",
            "deadline_ok",
            "switch",
            "t_spot",
            "t_od",
            "fallback",
            "worst_cost",
        )
    }
    for di, ev in enumerate(evals):
        n = len(ev.layouts)
        nr = len(ev.rows.pricing)
        if n == 0 or nr == 0:
            continue
        k = ev.kernel
        T = k["total_time_s"][:, None]
        dh1 = k["device_hours"][:, None]  # price = 1
        e1 = k["energy_kwh"][:, None]  # pue = 1
        rows = ev.rows
        price = rows.usd_per_device_h[None, :]
        pue = rows.pue[None, :]
        carb = rows.carbon_kg_per_kwh[None, :]
        is_spot = np.array([p == "spot" for p in rows.pricing])[None, :]
        fb = rows.fallback
        fb_safe = np.maximum(fb, 0)
        od_price = np.where(fb >= 0, rows.usd_per_device_h[fb_safe], np.nan)[None, :]
        od_pue = np.where(fb >= 0, rows.pue[fb_safe], 1.0)[None, :]
        od_carb = np.where(fb >= 0, rows.carbon_kg_per_kwh[fb_safe], 0.0)[None, :]
        nodes = np.ceil(ev.layouts.count / ev.hw.devices_per_node)[:, None]
        Ts = spot_expected_time_s(T, nodes, spot_model)
        sched = spot_schedule(T, Ts, cons.deadline_s, (fb >= 0)[None, :])
        devices_n = ev.layouts.count[:, None].astype(np.float64)
        # on-demand: the kernel's numbers scaled by price, PUE, carbon
        cost = np.where(
            is_spot,
            devices_n * (price * sched.spot_time_s + od_price * sched.on_demand_time_s) / S_PER_H,
            dh1 * price,
        )
        # spot energy: the kernel's energy per second of run, over the seconds spent on each kind of row
        e_rate = e1 / T
        energy = np.where(
            is_spot, e_rate * (sched.spot_time_s * pue + sched.on_demand_time_s * od_pue), e1 * pue
        )
        co2 = np.where(
            is_spot,
            e_rate * (sched.spot_time_s * pue * carb + sched.on_demand_time_s * od_pue * od_carb),
            e1 * pue * carb,
        )
        ttime = np.where(is_spot, sched.total_time_s, T)
        if cons.deadline_s is None:
            dl_ok = np.ones_like(ttime, dtype=bool)
        else:
            dl_ok = np.where(is_spot, sched.feasible, cons.deadline_s >= T)
        worst = np.where(
            is_spot & (cons.deadline_s is not None),
            devices_n * (price * np.maximum(sched.switch_at_s, 0.0) + od_price * T) / S_PER_H,
            np.nan,
        )
        shape = ttime.shape
        cols["dev"].append(np.full(shape, di).ravel())
        cols["lay"].append(np.broadcast_to(np.arange(n)[:, None], shape).ravel())
        cols["row"].append(np.broadcast_to(np.arange(nr)[None, :], shape).ravel())
        cols["time"].append(ttime.ravel())
        cols["cost"].append(np.broadcast_to(cost, shape).ravel())
        cols["energy"].append(np.broadcast_to(energy, shape).ravel())
        cols["co2"].append(np.broadcast_to(co2, shape).ravel())
        cols["deadline_ok"].append(np.broadcast_to(dl_ok, shape).ravel())
        cols["switch"].append(np.broadcast_to(np.where(is_spot, sched.switch_at_s, np.nan), shape).ravel())
        cols["t_spot"].append(np.broadcast_to(np.where(is_spot, sched.spot_time_s, np.nan), shape).ravel())
        cols["t_od"].append(np.broadcast_to(np.where(is_spot, sched.on_demand_time_s, np.nan), shape).ravel())
        cols["fallback"].append(np.broadcast_to(np.where(is_spot, fb[None, :], -1), shape).ravel())
        cols["worst_cost"].append(np.broadcast_to(worst, shape).ravel())
    c: dict[str, Any] = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in cols.items()}
    for key in ("dev", "lay", "row", "fallback"):
        c[key] = c[key].astype(np.int64)
    c["deadline_ok"] = c["deadline_ok"].astype(bool)

    infeasible: list[str] = []
    fit_any = c["time"].size > 0
    if not fit_any:
        infeasible.extend(_explain_no_fit(evals, model, cons, unpriced, no_units))
    ok = c["deadline_ok"].copy()
    if fit_any and not ok.any():
        infeasible.append(_explain_deadline(model, c, evals, cons, search, tokens, seq_len, gb))
    if cons.budget_usd is not None and ok.any():
        within = ok & (c["cost"] <= cons.budget_usd)
        if not within.any():
            i = int(np.flatnonzero(ok)[np.nanargmin(c["cost"][ok])])
            infeasible.append(
                f"nothing costs at most ${cons.budget_usd:,.0f}"
                + (f" within the {format_duration(cons.deadline_s)} deadline" if cons.deadline_s else "")
                + f": the cheapest plan costs ${c['cost'][i]:,.0f} ({_short(evals, c, i)}); "
                f"raise --budget-usd to ≥ {math.ceil(c['cost'][i]):,}"
                + (" or relax the deadline" if cons.deadline_s else "")
            )
        ok = within
    if cons.max_co2_kg is not None and ok.any():
        within = ok & (c["co2"] <= cons.max_co2_kg)
        if not within.any():
            i = int(np.flatnonzero(ok)[np.argmin(c["co2"][ok])])
            infeasible.append(
                f"nothing emits at most {cons.max_co2_kg:,.0f} kg CO2e under the other constraints: the "
                f"lowest-emission plan emits {c['co2'][i]:,.0f} kg ({_short(evals, c, i)}); raise --max-co2-kg "
                f"to ≥ {math.ceil(c['co2'][i]):,} or allow cleaner regions/providers"
            )
        ok = within

    feas = np.flatnonzero(ok)
    order = _distinct_top(c, feas, objective, w, top, evals)
    plans = [
        _plan_dict(evals, c, int(i), rank + 1, model, tokens, seq_len, gb, search, spot_model)
        for rank, i in enumerate(order)
    ]
    # Pareto front over (time, cost) of the feasible priced plans.
    priced = feas[~np.isnan(c["cost"][feas])]
    front = priced[pareto_front(c["time"][priced], c["cost"][priced])] if priced.size else priced
    pareto = [
        _plan_dict(evals, c, int(i), None, model, tokens, seq_len, gb, search, spot_model, brief=True)
        for i in front
    ]
    why = _why(plans[0], plans[1], objective, w) if len(plans) >= 2 else None

    assumptions = _assumptions(
        cat, evals, model, params, seq_len, gb, search, cons, spot_model, profiles_used
    )
    if objective == "mix":
        notes.append(
            "mix objective: score = Σ weight × metric / best feasible metric ("
            + ", ".join(f"{k}={v:g}" for k, v in w.items())
            + ")"
        )
    return TrainPlanResult(
        status="ok" if plans else "infeasible",
        objective=objective,
        plans=plans,
        pareto=pareto,
        why=why,
        infeasible=infeasible if not plans else [],
        notes=notes,
        assumptions=assumptions,
        price_snapshot_date=cat.price_snapshot_date,
        price_date_range=cat.price_date_range,
        candidates_evaluated=n_candidates,
        layouts_evaluated=n_layouts,
        feasible_plans=int(feas.size),
        elapsed_s=time.perf_counter() - t0,
        model=model.name,
        tokens=tokens,
        seq_len=seq_len,
        global_batch=gb,
        constraints={
            "deadline_s": cons.deadline_s,
            "budget_usd": cons.budget_usd,
            "max_devices": cons.max_devices,
            "devices": list(cons.devices) if cons.devices is not None else None,
            "providers": list(cons.providers) if cons.providers is not None else None,
            "regions": list(cons.regions) if cons.regions is not None else None,
            "spot": cons.spot,
            "max_co2_kg": cons.max_co2_kg,
        },
    )


def _rank(
    c: dict[str, np.ndarray], feas: np.ndarray, objective: str, w: dict[str, float], top: int | None = None
) -> np.ndarray:
    """Feasible candidate indices, best first. Ties: cost, time, fewer devices, then enumeration order."""
    if feas.size == 0:
        return feas
    cost = c["cost"][feas]
    time_s = c["time"][feas]
    if objective == "mix":
        score = np.zeros(feas.size)
        for key, wk in w.items():
            if wk == 0:
                continue
            m = c[_COL[OBJECTIVE_KEYS[key]]][feas]
            best = np.nanmin(m) if np.any(~np.isnan(m)) else np.nan
            score = score + wk * m / best
    else:
        score = c[_COL[OBJECTIVE_KEYS[objective]]][feas]
    keep = ~np.isnan(score)
    feas, score, cost, time_s = feas[keep], score[keep], cost[keep], time_s[keep]
    if top is not None and score.size > top:
        # Only the best ``top`` are needed: keep every candidate scoring at most the top-th score (ties
        # included), then sort that small set exactly as a full sort would.
        threshold = np.partition(score, top - 1)[top - 1]
        sel = score <= threshold
        feas, score, cost, time_s = feas[sel], score[sel], cost[sel], time_s[sel]
    cost_key = np.where(np.isnan(cost), np.inf, cost)
    order = np.lexsort((feas, time_s, cost_key, score))
    return feas[order]


def _main_key(evals: list[_DeviceEval], c: dict[str, np.ndarray], i: int) -> tuple[Any, ...]:
    """The main choices of a plan; ZeRO stage, micro-batch and recomputation are tuned within each."""
    ev = evals[int(c["dev"][i])]
    j = int(c["lay"][i])
    lay = ev.layouts
    return (
        int(c["dev"][i]),
        int(lay.count[j]),
        int(lay.tp[j]),
        int(lay.pp[j]),
        int(lay.precision[j]),
        int(c["row"][i]),
    )


def _distinct_top(
    c: dict[str, np.ndarray],
    feas: np.ndarray,
    objective: str,
    w: dict[str, float],
    top: int,
    evals: list[_DeviceEval],
) -> list[int]:
    """The best ``top`` plans that differ in a main choice (device, count, TP, PP, precision, price row):
    for each such combination only its best ZeRO / micro-batch / recomputation setting is listed.
    Plan #1 is always the overall best candidate."""
    k = top * 64
    while True:
        order = _rank(c, feas, objective, w, k)
        out: list[int] = []
        seen: set[tuple[Any, ...]] = set()
        for i in order:
            key = _main_key(evals, c, int(i))
            if key in seen:
                continue
            seen.add(key)
            out.append(int(i))
            if len(out) == top:
                return out
        if k >= feas.size:
            return out
        k *= 4


_COL = {"cost_usd": "cost", "total_time_s": "time", "energy_kwh": "energy", "co2_kg": "co2"}


def _short(evals: list[_DeviceEval], c: dict[str, np.ndarray], i: int) -> str:
    ev = evals[int(c["dev"][i])]
    j = int(c["lay"][i])
    r = int(c["row"][i])
    where = (
        ""
        if ev.rows.provider[r] is None
        else f" {ev.rows.provider[r]} {ev.rows.region[r]} {ev.rows.pricing[r]}"
    )
    return f"{int(ev.layouts.count[j])}× {ev.hw.device.id}, {_layout_text(ev.layouts, j)}{where}"


def _explain_no_fit(
    evals: list[_DeviceEval],
    model: ModelSpec,
    cons: TrainConstraints,
    unpriced: list[str],
    no_units: list[str],
) -> list[str]:
    out = []
    for ev in evals:
        if ev.n_layouts == 0:
            out.append(
                f"no valid layout on {ev.hw.device.id} within {cons.max_devices} devices (TP must divide the "
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


def _explain_deadline(
    model: ModelSpec,
    c: dict[str, np.ndarray],
    evals: list[_DeviceEval],
    cons: TrainConstraints,
    search: TrainSearch,
    tokens: float,
    seq_len: int,
    gb: int,
) -> str:
    """Why nothing meets the deadline, with the count (checked with the kernel) that would."""
    assert cons.deadline_s is not None
    i = int(np.argmin(c["time"]))
    fastest = float(c["time"][i])
    msg = (
        f"nothing meets a {format_duration(cons.deadline_s)} deadline: the fastest plan within "
        f"{cons.max_devices} devices takes {format_duration(fastest)} ({_short(evals, c, i)})"
    )
    # Try larger counts (same search otherwise) to find the fewest devices that would meet it.
    best: tuple[int, str] | None = None
    if search.counts is None:
        for ev in evals:
            if ev.n_layouts == 0:
                continue
            counts = [
                n
                for n in device_counts(cons.max_devices * ADVICE_COUNT_FACTOR, ev.hw.devices_per_node)
                if n > cons.max_devices
            ]
            if not counts:
                continue
            lay, r = _evaluate_device(
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
            good = np.asarray(r["fits"]) & (np.asarray(r["total_time_s"]) <= cons.deadline_s)
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
            f" (no layout up to {cons.max_devices * ADVICE_COUNT_FACTOR} devices meets it: the global batch "
            f"of {gb} sequences limits data parallelism)"
        )
    return msg + "; raise " + " or ".join(parts)


def _plan_dict(
    evals: list[_DeviceEval],
    c: dict[str, np.ndarray],
    i: int,
    rank: int | None,
    model: ModelSpec,
    tokens: float,
    seq_len: int,
    gb: int,
    search: TrainSearch,
    spot: SpotModel,
    *,
    brief: bool = False,
) -> dict[str, Any]:
    ev = evals[int(c["dev"][i])]
    j = int(c["lay"][i])
    r = int(c["row"][i])
    lay = ev.layouts
    k = ev.kernel
    rows = ev.rows
    price = float(rows.usd_per_device_h[r])
    cost = float(c["cost"][i])
    tp = int(lay.tp[j])
    out: dict[str, Any] = {
        "rank": rank,
        "device": ev.hw.device.id,
        "count": int(lay.count[j]),
        "tp": tp,
        "pp": int(lay.pp[j]),
        "dp": int(lay.dp[j]),
        "zero": int(lay.zero[j]),
        "micro_batch": int(lay.micro_batch[j]),
        "recompute": RECOMPUTE_NAMES[int(lay.recompute[j])],
        "precision": lay.precisions[int(lay.precision[j])],
        "provider": rows.provider[r],
        "region": rows.region[r],
        "pricing": rows.pricing[r],
        "total_time_s": float(c["time"][i]),
        "cost_usd": None if math.isnan(cost) else cost,
        "energy_kwh": float(c["energy"][i]),
        "co2_kg": float(c["co2"][i]),
        "fits": bool(k["fits"][j]),
    }
    if brief:
        return out
    pue = float(rows.pue[r])
    carbon = float(rows.carbon_kg_per_kwh[r])
    out.update(
        {
            "sequence_parallel": bool(tp > 1)
            if search.sequence_parallel is None
            else search.sequence_parallel,
            "flash_attention": search.flash_attention,
            "overlap_grad_reduce": search.overlap_grad_reduce,
            "goodput": search.goodput,
            "optimizer": search.optimizer,
            "seq_len": seq_len,
            "global_batch": gb,
            "grad_accum_steps": float(k["grad_accum_steps"][j]),
            "step_time_s": float(k["step_time_s"][j]),
            "tokens_per_s": float(k["tokens_per_s"][j]),
            "mfu": float(k["mfu"][j]),
            "memory_per_device_bytes": float(k["memory_total_bytes"][j]),
            "memory_capacity_bytes": float(ev.hw.device.memory_bytes),
            "device_hours": float(k["device_hours"][j]),
            "price_usd_per_device_h": None if math.isnan(price) else price,
            "pue": pue,
            "carbon_kg_per_kwh": carbon,
            "efficiency_profile": ev.hw.profile.device,
            "error_band_rel": ev.hw.profile.error_band_rel,
            # What estimate_train gives for this configuration (no interruptions).
            "estimate": {
                "total_time_s": float(k["total_time_s"][j]),
                "cost_usd": None if math.isnan(price) else float(k["device_hours"][j]) * price,
                "energy_kwh": float(k["energy_kwh"][j]) * pue,
                "co2_kg": float(k["energy_kwh"][j]) * pue * carbon,
            },
            "spot": None,
        }
    )
    if rows.pricing[r] == "spot":
        fb = int(c["fallback"][i])
        t_od = float(c["t_od"][i])
        worst = float(c["worst_cost"][i])
        out["spot"] = {
            "expected_time_s": float(c["time"][i]),
            "spot_time_s": float(c["t_spot"][i]),
            "on_demand_time_s": t_od,
            "uses_fallback": t_od > 0,
            "switch_to_on_demand_by_s": None if math.isnan(float(c["switch"][i])) else float(c["switch"][i]),
            "fallback_provider": rows.provider[fb] if fb >= 0 else None,
            "fallback_region": rows.region[fb] if fb >= 0 else None,
            "fallback_usd_per_device_h": float(rows.usd_per_device_h[fb]) if fb >= 0 else None,
            "fallback_worst_cost_usd": None if math.isnan(worst) else worst,
            "model": spot.to_dict(),
        }
    return out


def plan_specs(plan: dict[str, Any], tokens: float) -> tuple[TrainJob, Cluster]:
    """The (TrainJob, Cluster) that ``estimate_train`` takes for a plan (full, not brief, dict)."""
    job = TrainJob(
        tokens=tokens,
        seq_len=plan["seq_len"],
        global_batch=plan["global_batch"],
        micro_batch=plan["micro_batch"],
        precision=plan["precision"],
        optimizer=plan["optimizer"],
        tp=plan["tp"],
        pp=plan["pp"],
        zero=plan["zero"],
        recompute=plan["recompute"],
        sequence_parallel=plan["sequence_parallel"],
        flash_attention=plan["flash_attention"],
        overlap_grad_reduce=plan["overlap_grad_reduce"],
        goodput=plan["goodput"],
    )
    cluster = Cluster(
        device=plan["device"],
        count=plan["count"],
        provider=plan["provider"],
        region=plan["region"],
        pricing=plan["pricing"],
    )
    return job, cluster


def _config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    keys = (
        "device",
        "count",
        "tp",
        "pp",
        "dp",
        "zero",
        "micro_batch",
        "recompute",
        "precision",
        "provider",
        "region",
        "pricing",
    )
    return [f"{key} {a[key]} vs {b[key]}" for key in keys if a[key] != b[key]]


def _pct(a: float, b: float) -> str:
    return f"{(b - a) / b * 100:.1f}%" if b else "-"


def _why(a: dict[str, Any], b: dict[str, Any], objective: str, w: dict[str, float]) -> str:
    """The decisive difference between plan #1 and #2, in words and numbers."""
    diff = _config_diff(a, b)
    what = "; ".join(diff) if diff else "the same configuration"
    head = f"#1 and #2 differ in: {what}. "
    ta, tb = a["total_time_s"], b["total_time_s"]
    ca, cb = a["cost_usd"], b["cost_usd"]
    if objective == "cost" and ca is not None and cb is not None:
        if ca == cb:
            return (
                head
                + f"They cost the same (${ca:,.0f}); #1 is first on time ({format_duration(ta)} vs {format_duration(tb)})."
            )
        dh_a, dh_b = a["device_hours"], b["device_hours"]
        pa, pb = a["price_usd_per_device_h"], b["price_usd_per_device_h"]
        text = head + f"#1 costs ${ca:,.0f} vs ${cb:,.0f} ({_pct(ca, cb)} less). "
        if a["pricing"] == "spot" or b["pricing"] == "spot":
            text += "Spot plans carry interruptions (expected cost). "
        ratio_dh = dh_b / dh_a if dh_a else float("nan")
        ratio_p = pb / pa if pa else float("nan")
        if abs(math.log(ratio_dh)) >= abs(math.log(ratio_p)) if ratio_dh > 0 and ratio_p > 0 else True:
            text += (
                f"Decisive: device-hours {dh_a:,.0f} vs {dh_b:,.0f} ({_pct(dh_a, dh_b)} fewer; MFU {a['mfu']:.1%} vs "
                f"{b['mfu']:.1%}, step {a['step_time_s']:.3g} s vs {b['step_time_s']:.3g} s on {a['count']} vs "
                f"{b['count']} devices)"
            )
            if pa != pb:
                text += f"; price per device-hour ${pa:g} vs ${pb:g}"
            return text + "."
        return text + (
            f"Decisive: price per device-hour ${pa:g} vs ${pb:g} ({a['provider']} {a['region']} {a['pricing']} vs "
            f"{b['provider']} {b['region']} {b['pricing']}); device-hours {dh_a:,.0f} vs {dh_b:,.0f}."
        )
    if objective == "time":
        return head + (
            f"#1 takes {format_duration(ta)} vs {format_duration(tb)} ({_pct(ta, tb)} less): throughput "
            f"{a['tokens_per_s']:,.0f} vs {b['tokens_per_s']:,.0f} tokens/s (MFU {a['mfu']:.1%} vs {b['mfu']:.1%} "
            f"on {a['count']} vs {b['count']} devices)."
        )
    if objective in ("energy", "co2"):
        key, unit = ("energy_kwh", "kWh") if objective == "energy" else ("co2_kg", "kg CO2e")
        text = head + f"#1 uses {a[key]:,.0f} {unit} vs {b[key]:,.0f} ({_pct(a[key], b[key])} less)"
        if objective == "co2" and a["carbon_kg_per_kwh"] != b["carbon_kg_per_kwh"]:
            text += (
                f"; grid carbon {a['carbon_kg_per_kwh']:g} vs {b['carbon_kg_per_kwh']:g} kg/kWh "
                f"({a['region']} vs {b['region']})"
            )
        return (
            text
            + f"; energy {a['energy_kwh']:,.0f} vs {b['energy_kwh']:,.0f} kWh (PUE {a['pue']:g} vs {b['pue']:g})."
        )
    parts = []
    for key in w:
        col = OBJECTIVE_KEYS[key]
        va, vb = a[col], b[col]
        if va is not None and vb is not None:
            parts.append(f"{key} {va:,.4g} vs {vb:,.4g}")
    return head + "Weighted score favours #1: " + ", ".join(parts) + "."


def _assumptions(
    cat: Any,
    evals: list[_DeviceEval],
    model: ModelSpec,
    params: float,
    seq_len: int,
    gb: int,
    search: TrainSearch,
    cons: TrainConstraints,
    spot: SpotModel,
    profiles_used: dict[str, str],
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(name: str, value: Any, source: str) -> None:
        out.append({"name": name, "value": value, "source": source})

    add(
        "seq_len",
        seq_len,
        "user" if search.seq_len else f"default: min(model max {model.max_seq_len}, {DEFAULT_MAX_SEQ_LEN})",
    )
    add(
        "global_batch",
        gb,
        "user"
        if search.global_batch
        else (
            f"default: ~{'4M' if params >= 7e9 else '1M'} tokens per step for a {params / 1e9:.2g}B-parameter model "
            "(power of two; Llama 2/3 pre-training used ~4M)"
        ),
    )
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
    add("pipeline_schedule", "1F1B, no interleaving", "Narayanan et al. 2021")
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
    for dev_id, prof in profiles_used.items():
        p = cat.efficiency(dev_id)
        add(
            f"efficiency_profile[{dev_id}]",
            prof,
            f"{p.source} ({p.date}); error band ±{p.error_band_rel:.0%}",
        )
    seen = set()
    for ev in evals:
        for r in range(len(ev.rows.pricing)):
            if ev.rows.provider[r] is None:
                add(f"price[{ev.hw.device.id}]", None, "no price in the catalog")
                continue
            key = (ev.hw.device.id, ev.rows.provider[r], ev.rows.region[r], ev.rows.pricing[r])
            if key in seen:
                continue
            seen.add(key)
            row = cat.price(
                ev.hw.device.id,
                provider=ev.rows.provider[r],
                region=ev.rows.region[r],
                pricing=ev.rows.pricing[r],
            )
            add(
                f"price[{'/'.join(str(x) for x in key)}]",
                row.usd_per_device_h,
                f"{row.instance}: {row.source} ({row.date})",
            )
    add(
        "pue_carbon",
        "per provider/region",
        "catalog providers.csv and carbon.csv (region → provider → world)",
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


def layouts_per_device_estimate(model: ModelSpec) -> int:
    """Rough size of one device's grid before filtering (for benchmarks and docs)."""
    return (
        len(DEFAULT_TP)
        * len(pipeline_degrees(model.n_layers))
        * len(DEFAULT_ZERO)
        * len(DEFAULT_MICRO_BATCH)
        * len(DEFAULT_RECOMPUTE)
    )
