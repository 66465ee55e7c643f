"""Typed plans: :class:`TrainPlan` (one ranked training configuration) and :class:`TrainPlanResult`.

A plan's keys exist once, as the fields of :class:`TrainPlan`; field metadata marks the ``brief`` keys (the
Pareto listing) and the ``choice`` keys (what a user picks: device, layout, place — compared by the "why #1
beats #2" text). ``to_dict`` is the JSON contract of ``mlcost plan train --json`` (docs/json.md)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

_BRIEF = {"brief": True}
_CHOICE = {"brief": True, "choice": True}


def _brief(**kw: Any) -> Any:
    return field(metadata=_BRIEF, **kw)


def _choice(**kw: Any) -> Any:
    return field(metadata=_CHOICE, **kw)


@dataclass(frozen=True, kw_only=True)
class PlanEstimate:
    """What ``estimate_train`` gives for the plan's configuration (no interruptions).
    Units: s, USD, kWh, kg CO2e."""

    total_time_s: float
    cost_usd: float | None
    energy_kwh: float
    co2_kg: float


@dataclass(frozen=True, kw_only=True)
class SpotOutcome:
    """Expected outcome of a spot plan with an on-demand fallback (docs/plan.md). Units: s, USD."""

    expected_time_s: float
    spot_time_s: float
    on_demand_time_s: float
    uses_fallback: bool
    switch_to_on_demand_by_s: float | None
    fallback_provider: str | None
    fallback_region: str | None
    fallback_usd_per_device_h: float | None
    fallback_worst_cost_usd: float | None
    model: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class TrainPlan:
    """One ranked training configuration with its predicted time, cost, energy and emissions.

    The layout fields use the job's vocabulary (:class:`mlcost.spec.TrainJob`): tp, pp, virtual_stages
    (interleaved 1F1B chunks per rank), dp, zero, micro_batch, recompute, precision. ``command`` is the
    ``mlcost estimate train`` line that reproduces the plan's uninterrupted time and cost. Units are in the
    names; ``carbon`` says whether the grid figure is the region's, its country's average, or missing
    (a provider-wide fallback)."""

    rank: int | None = _brief()
    device: str = _choice()
    count: int = _choice()
    tp: int = _choice()
    pp: int = _choice()
    virtual_stages: int = _choice()
    dp: int = _choice()
    zero: int = _choice()
    micro_batch: int = _choice()
    recompute: str = _choice()
    precision: str = _choice()
    provider: str | None = _choice()
    region: str | None = _choice()
    pricing: str = _choice()
    total_time_s: float = _brief()
    cost_usd: float | None = _brief()
    energy_kwh: float = _brief()
    co2_kg: float = _brief()
    fits: bool = _brief()
    sequence_parallel: bool
    flash_attention: bool
    overlap_grad_reduce: bool
    goodput: float
    optimizer: str
    seq_len: int
    global_batch: int
    grad_accum_steps: float
    step_time_s: float
    tokens_per_s: float
    mfu: float
    memory_per_device_bytes: float
    memory_capacity_bytes: float
    device_hours: float
    price_usd_per_device_h: float | None
    instance: str | None
    price_source: str | None
    pue: float
    carbon_kg_per_kwh: float
    carbon: str
    efficiency_profile: str
    error_band_rel: float
    estimate: PlanEstimate
    spot: SpotOutcome | None
    command: str

    @classmethod
    def keys(cls, *, brief: bool = False) -> tuple[str, ...]:
        """The JSON keys of a plan (of a Pareto point when ``brief``)."""
        return tuple(f.name for f in dataclasses.fields(cls) if not brief or f.metadata.get("brief"))

    @classmethod
    def choice_keys(cls) -> tuple[str, ...]:
        """The keys a user chooses (device, count, layout, place)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("choice"))

    def to_dict(self, *, brief: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.keys(brief=brief):
            value = getattr(self, name)
            is_record = dataclasses.is_dataclass(value) and not isinstance(value, type)
            out[name] = dataclasses.asdict(value) if is_record else value  # type: ignore[arg-type]
        return out

    def replace(self, **changes: Any) -> TrainPlan:
        return dataclasses.replace(self, **changes)


@dataclass
class TrainPlanResult:
    """Outcome of :func:`mlcost.plan.train.plan_train`: ranked plans, the Pareto front over (time, cost),
    why #1 beats #2, what made a request infeasible, notes and assumptions."""

    status: str  # "ok" or "infeasible"
    objective: str
    plans: list[TrainPlan]
    pareto: list[TrainPlan]
    why: str | None
    infeasible: list[str]
    notes: list[str]
    assumptions: list[dict[str, Any]]
    price_snapshot_date: str
    price_date_range: tuple[str, str]
    price_snapshot_commits: dict[str, str]
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
        """The JSON contract of ``mlcost plan train --json`` (docs/json.md)."""
        return {
            "kind": "plan-train",
            "status": self.status,
            "model": self.model,
            "tokens": self.tokens,
            "seq_len": self.seq_len,
            "global_batch": self.global_batch,
            "objective": self.objective,
            "constraints": self.constraints,
            "plans": [p.to_dict() for p in self.plans],
            "pareto": [p.to_dict(brief=True) for p in self.pareto],
            "why": self.why,
            "infeasible": self.infeasible,
            "notes": self.notes,
            "assumptions": self.assumptions,
            "price_snapshot_date": self.price_snapshot_date,
            "price_date_range": list(self.price_date_range),
            "price_snapshot_commits": self.price_snapshot_commits,
            "candidates_evaluated": self.candidates_evaluated,
            "layouts_evaluated": self.layouts_evaluated,
            "feasible_plans": self.feasible_plans,
            "elapsed_s": self.elapsed_s,
        }


@dataclass(frozen=True, kw_only=True)
class ServePlan:
    """One ranked serving fleet: device × TP × batch × weight format × price row, sized to the demand.

    Units are in the names (s, USD, kWh, kg CO2e, bytes); ``choice`` fields are what a user picks. ``to_dict``
    is the ``plan serve --json`` contract (docs/plan.md)."""

    rank: int = _choice()
    device: str = _choice()
    tp: int = _choice()
    batch: int = _choice()
    weight_precision: str = _choice()
    kv_precision: str
    replicas: int
    devices: int
    provider: str | None = _choice()
    region: str | None = _choice()
    pricing: str = _choice()
    price_usd_per_device_h: float
    ttft_s: float
    time_per_output_token_s: float
    request_latency_s: float
    tokens_per_s_per_replica: float
    capacity_output_tokens_per_s: float
    utilisation: float
    cost_per_hour_usd: float
    monthly_cost_usd: float
    cost_per_million_output_tokens_usd: float
    cost_per_million_output_tokens_at_full_utilisation_usd: float
    energy_kwh_per_month: float
    co2_kg_per_month: float
    memory_per_device_bytes: float
    memory_capacity_bytes: float
    max_batch: int
    bound: str
    quality_risk: str
    prompt_len: int
    output_len: int
    latency_text: str

    @classmethod
    def choice_keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("choice") and f.name != "rank")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
