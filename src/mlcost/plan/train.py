"""``plan_train``: search device × count × TP/PP(×virtual stages)/DP × ZeRO × micro-batch × recomputation ×
precision × provider/region/pricing for a training job, drop what does not fit or breaks a constraint, rank by
an objective, and explain the answer.

Method (every number comes from :func:`mlcost.estimate.train_kernel`, the estimator's own kernel):

1. per device, build all valid layouts as index arrays (:mod:`mlcost.plan.space`) and evaluate the
   kernel once over them, with price, PUE and carbon set to 1; keep the layouts that fit in memory
   (:mod:`mlcost.plan.candidates`);
2. cross them with the device's price rows — every region, dominated rows pruned (:mod:`mlcost.plan.prices`):
   cost = device-hours × price, energy × PUE, CO2 × PUE × carbon, spot rows through :mod:`mlcost.plan.spot`;
3. filter deadline → budget → CO2 cap; when a filter empties the set, say which plan came closest and
   what would make it feasible (:mod:`mlcost.plan.explain`);
4. rank by the objective (:mod:`mlcost.plan.ranking`), report the top plans as :class:`TrainPlan` with the
   ``mlcost estimate train`` command reproducing each, the Pareto front over (time, cost), and why #1 beats #2.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlcost.errors import SpecError
from mlcost.estimate.context import check_framework, framework_profile
from mlcost.plan import explain
from mlcost.plan.build import make_plan, plan_specs
from mlcost.plan.candidates import (
    CandidateTable,
    DeviceEval,
    evaluate_device,
    expand,
    fitting,
    pareto_candidates,
)
from mlcost.plan.defaults import DEFAULT_MAX_SEQ_LEN, TrainDefaults, train_defaults
from mlcost.plan.pareto import pareto_front
from mlcost.plan.prices import check_places, price_rows
from mlcost.plan.ranking import OBJECTIVE_KEYS, OBJECTIVES, distinct_top, parse_weights
from mlcost.plan.space import (
    DEFAULT_MICRO_BATCH,
    DEFAULT_RECOMPUTE,
    DEFAULT_TP,
    DEFAULT_VIRTUAL_STAGES,
    DEFAULT_ZERO,
    DeviceHardware,
    device_counts,
    pipeline_degrees,
    train_precisions,
)
from mlcost.plan.spot import DEFAULT_SPOT, SpotModel
from mlcost.plan.types import TrainPlan, TrainPlanResult
from mlcost.spec.model import ModelSpec
from mlcost.spec.validate import context_fits
from mlcost.units import S_PER_DAY, format_duration

__all__ = [
    "DEFAULT_MAX_SEQ_LEN",
    "OBJECTIVES",
    "OBJECTIVE_KEYS",
    "TrainConstraints",
    "TrainPlan",
    "TrainPlanResult",
    "TrainSearch",
    "check_places",
    "parse_weights",
    "plan_specs",
    "plan_train",
    "price_rows",
]
PRECISIONS = ("fp32", "tf32", "bf16", "fp16", "fp8")
#: Without ``--deadline``, a plan #1 longer than this gets a note naming the best plan within it. Units: s.
LONG_RUN_S = 30 * S_PER_DAY


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "deadline_s": self.deadline_s,
            "budget_usd": self.budget_usd,
            "max_devices": self.max_devices,
            "devices": list(self.devices) if self.devices is not None else None,
            "providers": list(self.providers) if self.providers is not None else None,
            "regions": list(self.regions) if self.regions is not None else None,
            "spot": self.spot,
            "max_co2_kg": self.max_co2_kg,
        }


@dataclass(frozen=True, kw_only=True)
class TrainSearch:
    """The search space (module :mod:`mlcost.plan.space` documents the defaults).

    Attributes:
        seq_len / global_batch: None = the model's defaults (:mod:`mlcost.plan.defaults`).
        precisions: training precisions tried (fp8 only on devices with fp8 units; fp32 off by default).
        tps / pps / zeros / micro_batches / recomputes / virtual_stages: candidate values (pps: powers of
            two dividing layers; virtual stages: interleaved 1F1B chunks per rank, used with PP > 1).
        counts: device counts (default powers of two and ×1.5 up to max_devices, whole nodes from one node up).
        optimizer: adamw or sgd.
        sequence_parallel: None = on whenever TP > 1.
        flash_attention: fused attention (on by default).
        overlap_grad_reduce: the framework overlaps gradient communication with backward (on by default).
        goodput: share of wall time in useful steps (1.0: failures/restarts/evaluation not counted).
        framework: framework family whose efficiency profile scores each device (``<device>/<family>`` rows
            of efficiency.toml, as ``mlcost estimate train --framework``); a device without that family's
            row keeps its own profile (the assumptions say which). None = each device's own profile.
    """

    seq_len: int | None = None
    global_batch: int | None = None
    precisions: tuple[str, ...] = ("bf16", "fp8")
    tps: tuple[int, ...] = DEFAULT_TP
    pps: tuple[int, ...] | None = None
    zeros: tuple[int, ...] = DEFAULT_ZERO
    micro_batches: tuple[int, ...] = DEFAULT_MICRO_BATCH
    recomputes: tuple[str, ...] = DEFAULT_RECOMPUTE
    virtual_stages: tuple[int, ...] = DEFAULT_VIRTUAL_STAGES
    counts: tuple[int, ...] | None = None
    optimizer: str = "adamw"
    sequence_parallel: bool | None = None
    flash_attention: bool = True
    overlap_grad_reduce: bool = True
    goodput: float = 1.0
    framework: str | None = None


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
    catalog_files: Sequence[str] = (),
) -> TrainPlanResult:
    """Plan a training run of ``tokens`` tokens of ``model`` (module docstring). ``catalog`` None means the
    package catalog; ``catalog_files`` are the override files it was built with (named in each plan's
    reproduce command)."""
    t0 = time.perf_counter()
    cons, search = constraints or TrainConstraints(), search or TrainSearch()
    cat = catalog if catalog is not None else _package_catalog()
    w = _check(tokens, cons, search, objective, weights)
    if search.framework is not None:
        check_framework(cat, search.framework)
    defaults = train_defaults(model, search.seq_len, search.global_batch)
    context_fits(model.name, model.max_seq_len, defaults.seq_len, "--seq-len")
    need_price = objective == "cost" or w.get("cost", 0) > 0 or cons.budget_usd is not None
    need_carbon = objective == "co2" or w.get("co2", 0) > 0 or cons.max_co2_kg is not None
    evals, notes, no_fit, n_layouts, n_candidates, profiles = _evaluate_all(
        cat, model, tokens, cons, search, defaults, need_price, need_carbon
    )
    c = expand(evals, cons.deadline_s, spot_model)
    ok, infeasible = _filter(c, evals, model, tokens, cons, search, defaults, no_fit)
    order = distinct_top(c, np.flatnonzero(ok), objective, w, top, evals) if ok.any() else []
    common: dict[str, Any] = {
        "model_name": model.name,
        "tokens": tokens,
        "seq_len": defaults.seq_len,
        "global_batch": defaults.global_batch,
        "search": search,
        "spot": spot_model,
        "catalog_files": catalog_files,
    }
    plans = [make_plan(evals, c, i, rank + 1, **common) for rank, i in enumerate(order)]
    if cons.deadline_s is None and plans and plans[0].total_time_s > LONG_RUN_S:
        notes.append(_long_run_note(c, ok, plans[0], objective, w, evals, common))
    priced = pareto_candidates(c, ok)
    front = priced[pareto_front(c.time_s[priced], c.cost_usd[priced])] if priced.size else priced
    pareto = [make_plan(evals, c, int(i), None, **common) for i in front]
    if objective == "mix":
        notes.append(
            "mix objective: score = Σ weight × metric / best feasible metric ("
            + ", ".join(f"{k}={v:g}" for k, v in w.items())
            + ")"
        )
    from mlcost.catalog.regions import snapshot_commits

    return TrainPlanResult(
        status="ok" if plans else "infeasible",
        objective=objective,
        plans=plans,
        pareto=pareto,
        why=explain.why(plans[0], plans[1], objective, w) if len(plans) >= 2 else None,
        infeasible=infeasible if not plans else [],
        notes=notes,
        assumptions=explain.assumptions(cat, plans, defaults, search, cons, spot_model, profiles),
        price_snapshot_date=cat.price_snapshot_date,
        price_date_range=cat.price_date_range,
        price_snapshot_commits=snapshot_commits(cat),
        candidates_evaluated=n_candidates,
        layouts_evaluated=n_layouts,
        feasible_plans=int(ok.sum()),
        elapsed_s=time.perf_counter() - t0,
        model=model.name,
        tokens=tokens,
        seq_len=defaults.seq_len,
        global_batch=defaults.global_batch,
        constraints=cons.to_dict(),
    )


def _long_run_note(
    c: CandidateTable,
    ok: np.ndarray,
    best: TrainPlan,
    objective: str,
    w: dict[str, float],
    evals: list[DeviceEval],
    common: dict[str, Any],
) -> str:
    """Without ``--deadline`` the cheapest plan may take years on a few cheap devices: say so, and name the
    best plan that finishes within :data:`LONG_RUN_S` and what it costs more."""
    head = (
        f"no --deadline was given and plan #1 takes {format_duration(best.total_time_s)}; "
        f"pass --deadline (e.g. --deadline {LONG_RUN_S / S_PER_DAY:.0f}d) to bound the wall-clock time"
    )
    quick = ok & (c.time_s <= LONG_RUN_S)
    if not quick.any():
        return head + f" (no plan finishes within {format_duration(LONG_RUN_S)} under these limits)"
    i = distinct_top(c, quick, objective, w, 1, evals)[0]
    alt = make_plan(evals, c, i, None, **common)
    extra = ""
    if best.cost_usd and alt.cost_usd is not None:
        extra = f", {alt.cost_usd / best.cost_usd - 1:+.0%} cost (${alt.cost_usd:,.0f})"
    where = f" {alt.provider} {alt.region}" if alt.provider else ""
    return (
        head + f"; within {format_duration(LONG_RUN_S)} the best is {alt.count} x {alt.device}{where}: "
        f"{format_duration(alt.total_time_s)}{extra}"
    )


def _package_catalog() -> Any:
    from mlcost.catalog import builtin_catalog

    return builtin_catalog()


def _check(
    tokens: float,
    cons: TrainConstraints,
    search: TrainSearch,
    objective: str,
    weights: dict[str, float] | None,
) -> dict[str, float]:
    """Validate the request; return the objective's weights."""
    if objective not in OBJECTIVES:
        raise SpecError(f"unknown objective {objective!r}", hint=f"choose from {', '.join(OBJECTIVES)}")
    if not (tokens > 0 and math.isfinite(tokens)):
        raise SpecError(f"tokens must be a positive number, got {tokens!r}")
    if cons.max_devices < 1:
        raise SpecError(f"--max-devices must be at least 1, got {cons.max_devices}")
    for p in search.precisions:
        if p not in PRECISIONS:
            raise SpecError(f"unknown training precision {p!r}", hint=f"choose from {', '.join(PRECISIONS)}")
    for v in search.virtual_stages:
        if v < 1:
            raise SpecError(f"virtual stages must be at least 1, got {v}")
    return dict(weights or {"cost": 1.0, "time": 1.0}) if objective == "mix" else {objective: 1.0}


def _evaluate_all(
    cat: Any,
    model: ModelSpec,
    tokens: float,
    cons: TrainConstraints,
    search: TrainSearch,
    defaults: TrainDefaults,
    need_price: bool,
    need_carbon: bool,
) -> tuple[list[DeviceEval], list[str], list[str], int, int, dict[str, str]]:
    """Per allowed device: its price rows, its layouts through the kernel, the fitting ones. Returns the
    evaluations, notes, why nothing fits (when nothing does), layout and candidate counts, profiles used."""
    devices = [cat.device(d) for d in cons.devices] if cons.devices is not None else cat.devices()
    check_places(cat, cons.providers, cons.regions)
    notes: list[str] = []
    unpriced: list[str] = []
    no_units: list[str] = []
    evals: list[DeviceEval] = []
    profiles: dict[str, Any] = {}  # device id -> the EfficiencyProfile that scored it
    n_layouts = n_candidates = 0
    for dev in devices:
        precs = train_precisions(dev, search.precisions)
        if not precs:
            no_units.append(f"{dev.id} (has {', '.join(sorted(dev.peak_flops_per_s))})")
            continue
        rows = price_rows(
            cat,
            dev.id,
            providers=cons.providers,
            regions=cons.regions,
            spot=cons.spot,
            need_price=need_price,
            need_carbon=need_carbon,
        )
        notes.extend(rows.notes)
        if len(rows) == 0:
            unpriced.append(dev.id)
            continue
        prof = (
            cat.efficiency(dev.id)
            if search.framework is None
            else framework_profile(cat, dev.id, search.framework)
        )
        profiles[dev.id] = prof
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
        lay, r = evaluate_device(
            model,
            hw,
            counts=[n for n in counts if n <= cons.max_devices],
            search=search,
            tokens=tokens,
            seq_len=defaults.seq_len,
            global_batch=defaults.global_batch,
            precisions=precs,
        )
        n_layouts += len(lay)
        n_candidates += len(lay) * len(rows)
        evals.append(fitting(hw, lay, r, rows))
    if unpriced:
        where = (
            f"at the allowed providers/regions ({', '.join(cons.providers or ())} {', '.join(cons.regions or ())})".strip()
            if (cons.providers or cons.regions)
            else "in the catalog"
        )
        notes.append(
            f"no price {where} for {', '.join(unpriced)}: "
            + ("they cannot be ranked by cost and were left out" if need_price else "left out")
            + " (add a [[price]] row in an override file to include them)"
        )
    if no_units:
        notes.append(f"no units for {'/'.join(search.precisions)} on: {', '.join(no_units)}")
    no_fit = explain.explain_no_fit(evals, model, cons.max_devices, unpriced, no_units)
    return evals, notes, no_fit, n_layouts, n_candidates, profiles


def _filter(
    c: CandidateTable,
    evals: list[DeviceEval],
    model: ModelSpec,
    tokens: float,
    cons: TrainConstraints,
    search: TrainSearch,
    defaults: TrainDefaults,
    no_fit: list[str],
) -> tuple[np.ndarray, list[str]]:
    """Deadline → budget → CO2 cap; the mask of feasible candidates and why none is, when none is."""
    infeasible: list[str] = []
    if len(c) == 0:
        infeasible.extend(no_fit)
        return np.zeros(0, dtype=bool), infeasible
    if not c.available.any():
        infeasible.append(
            "no price row offers that many devices: the plans that fit need more devices than the "
            "marketplace offers priced for them; allow other providers or fewer --max-devices"
        )
        return np.zeros(len(c), dtype=bool), infeasible
    ok = c.deadline_ok & c.available
    if not ok.any():
        assert cons.deadline_s is not None
        infeasible.append(
            explain.explain_deadline(
                model,
                c,
                evals,
                deadline_s=cons.deadline_s,
                max_devices=cons.max_devices,
                search=search,
                tokens=tokens,
                seq_len=defaults.seq_len,
                gb=defaults.global_batch,
            )
        )
    for key, cap in (("cost_usd", cons.budget_usd), ("co2_kg", cons.max_co2_kg)):
        if cap is not None and ok.any():
            within = ok & (c.metric(key) <= cap)
            if not within.any():
                infeasible.append(explain.explain_cap(c, ok, evals, key, cap, cons.deadline_s))
            ok = within
    return ok, infeasible


def layouts_per_device_estimate(model: ModelSpec) -> int:
    """Rough size of one device's grid before filtering (for benchmarks and docs)."""
    return (
        len(DEFAULT_TP)
        * len(pipeline_degrees(model.n_layers))
        * len(DEFAULT_ZERO)
        * len(DEFAULT_MICRO_BATCH)
        * len(DEFAULT_RECOMPUTE)
        * len(DEFAULT_VIRTUAL_STAGES)
    )


_ = TrainPlan  # re-exported
