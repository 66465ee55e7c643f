"""Total cost of ownership: training plus serving over a horizon, for candidate model sizes.

Every dollar, joule and gram of CO2 comes from the estimator (:func:`mlcost.estimate.estimate_train` and
:func:`mlcost.estimate.estimate_serve`); this module only chooses layouts, multiplies by traffic and time,
and compares. Notation (the code uses the same symbols):

* traffic ``T`` output tokens per day, ``P``/``O`` prompt/output tokens per request, horizon ``H`` days of
  serving after training;
* candidate i: training cost ``a_i`` (USD, one training run on the training cluster) and serving cost
  ``s_i`` USD per million output tokens (prefill of the prompt included: the estimator's request time is
  TTFT + O·TPOT);
* ``total_i(T) = a_i + s_i · T · H / 10^6`` — a line in T. The cheapest candidate as a function of traffic
  is the lower envelope of these lines; **break-even** traffic is where the envelope changes hands:
  ``T* = (a_j − a_i) / ((s_i − s_j) · H / 10^6)``.

Layout choice for training: the planner (:func:`mlcost.plan.train.plan_train`, objective ``time``) searches
TP, PP (with virtual stages), ZeRO, micro-batch and recomputation for the cluster's device and count; the
fastest fitting layout (hence the cheapest on a fixed cluster) is then run through ``estimate_train`` with
the cluster as given. Sequence length and global batch default to the model's (:mod:`mlcost.plan.defaults`),
the same values ``estimate train`` and ``plan train`` use.

Serving choice: for each TP in 1, 2, 4, 8 (or the one given), the largest batch ≤ ``max_batch`` that fits
and, with a TPOT target, meets it; the TP with the lowest cost per million output tokens wins.

NPV (optional, with revenue per million output tokens): training is paid at t = 0; serving cost and
revenue arrive at the end of each 30-day month, discounted at the monthly rate ``(1 + annual)^(1/12) − 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mlcost.catalog.protocol import CatalogLike
from mlcost.errors import SpecError
from mlcost.estimate.params import count_params
from mlcost.estimate.result import Assumption, ServeEstimate, TrainEstimate
from mlcost.estimate.serve import estimate_serve
from mlcost.estimate.train import estimate_train
from mlcost.finance.scaling import (
    INFERENCE_FLOPS_PER_PARAM_TOKEN,
    TRAIN_FLOPS_PER_PARAM_TOKEN,
    ScalingLaw,
    model_for_params,
    size_label,
)
from mlcost.spec._validate import check_choice, check_positive, check_positive_int
from mlcost.spec.cluster import Cluster
from mlcost.spec.job import (
    KV_PRECISIONS,
    PRECISIONS,
    WEIGHT_PRECISIONS,
    KvPrecision,
    Precision,
    ServeJob,
    WeightPrecision,
)
from mlcost.spec.model import ModelSpec
from mlcost.units import S_PER_DAY, S_PER_MONTH

#: Sizes of the default sweep in target-loss mode, as multiples of the compute-optimal size.
DEFAULT_SWEEP = (0.25, 0.5, 1.0, 2.0, 4.0)
TP_CHOICES = (1, 2, 4, 8)


# ---- inputs -----------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Traffic:
    """Expected serving demand.

    Attributes:
        output_tokens_per_day: generated tokens per day. Units: tokens/day.
        prompt_len: prompt tokens per request.
        output_len: generated tokens per request.
    """

    output_tokens_per_day: float
    prompt_len: int = 1024
    output_len: int = 256

    def __post_init__(self) -> None:
        if not math.isfinite(self.output_tokens_per_day) or self.output_tokens_per_day < 0:
            raise SpecError(
                f"tokens per day must be a non-negative number, got {self.output_tokens_per_day!r}"
            )
        for name in ("prompt_len", "output_len"):
            if int(getattr(self, name)) < 1:
                raise SpecError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)!r}")

    @property
    def processed_tokens_per_output_token(self) -> float:
        """Prompt plus output tokens the model processes per output token."""
        return (self.prompt_len + self.output_len) / self.output_len

    def to_dict(self) -> dict[str, Any]:
        return {
            "output_tokens_per_day": self.output_tokens_per_day,
            "prompt_len": self.prompt_len,
            "output_len": self.output_len,
        }


@dataclass(frozen=True, kw_only=True)
class TrainSetup:
    """How candidates are trained.

    Attributes:
        cluster: training devices (count, provider, pricing).
        seq_len: tokens per sequence (None: the model's default, mlcost.plan.defaults).
        global_batch: sequences per optimizer step (None: the model's default).
        precision: compute precision (mixed with fp32 master weights for bf16/fp16/fp8).
    """

    cluster: Cluster
    seq_len: int | None = None
    global_batch: int | None = None
    precision: Precision = "bf16"

    def __post_init__(self) -> None:
        check_choice("TrainSetup", "precision", self.precision, PRECISIONS)
        for name in ("seq_len", "global_batch"):
            if getattr(self, name) is not None:
                check_positive_int("TrainSetup", name, getattr(self, name))


@dataclass(frozen=True, kw_only=True)
class ServeSetup:
    """How candidates are served.

    Attributes:
        cluster: serving device, provider, pricing (``count`` is ignored: one replica uses TP devices).
        weight_precision / kv_precision: storage formats.
        tp: tensor-parallel degree of a replica; None chooses the cheapest of 1, 2, 4, 8.
        max_batch: largest batch tried.
        tpot_target_s: optional limit on time per output token. Units: s.
    """

    cluster: Cluster
    weight_precision: WeightPrecision = "bf16"
    kv_precision: KvPrecision = "bf16"
    tp: int | None = None
    max_batch: int = 64
    tpot_target_s: float | None = None

    def __post_init__(self) -> None:
        own = "ServeSetup"
        check_choice(own, "weight_precision", self.weight_precision, WEIGHT_PRECISIONS)
        check_choice(own, "kv_precision", self.kv_precision, KV_PRECISIONS)
        check_positive_int(own, "max_batch", self.max_batch)
        if self.tp is not None:
            check_positive_int(own, "tp", self.tp)
        if self.tpot_target_s is not None:
            check_positive(own, "tpot_target_s", self.tpot_target_s)


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One model size and the tokens it is trained on.

    Attributes:
        model: the architecture.
        train_tokens: training tokens. Units: tokens.
        role: ``compute-optimal``, ``inference-aware``, ``sweep`` or ``given``.
    """

    model: ModelSpec
    train_tokens: float
    role: str = "given"


# ---- outputs ----------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class CandidateCost:
    """Training plus serving of one candidate over the horizon.

    Attributes (None where the candidate is not feasible or no revenue was given):
        name, role: the candidate.
        params: parameter count. train_tokens: tokens. tokens_per_param: train_tokens / params.
        predicted_loss: scaling-law loss at (params, train_tokens). Units: nats/token.
        train_flops: 6·N·D. inference_tokens: prompt + output tokens processed over the horizon.
        inference_flops: 2·N·inference_tokens. Units: FLOPs.
        feasible / reason: whether a training layout and a serving configuration fit, and why not.
        train / serve: the estimator's results for the chosen layout and serving configuration.
        train_cost_usd, serve_cost_usd, total_cost_usd: USD over the horizon.
        serve_cost_per_million_output_tokens_usd: USD per 10^6 output tokens.
        train_time_s: wall time of training. Units: s.
        *_energy_kwh: kWh (facility, PUE included). *_co2_kg: kg CO2e.
        present_value_cost_usd: costs discounted at the discount rate. Units: USD.
        revenue_usd, npv_usd: undiscounted revenue and net present value. Units: USD.
        roi: (revenue − total cost) / total cost, undiscounted. Unitless.
        payback_s: serving time after which revenue − serving cost repays training. Units: s.
    """

    name: str
    role: str
    params: int
    train_tokens: float
    tokens_per_param: float
    predicted_loss: float
    train_flops: float
    inference_tokens: float
    inference_flops: float
    feasible: bool
    reason: str | None
    train: TrainEstimate | None
    serve: ServeEstimate | None
    train_cost_usd: float | None = None
    serve_cost_per_million_output_tokens_usd: float | None = None
    serve_cost_usd: float | None = None
    total_cost_usd: float | None = None
    train_time_s: float | None = None
    train_energy_kwh: float | None = None
    serve_energy_kwh: float | None = None
    total_energy_kwh: float | None = None
    train_co2_kg: float | None = None
    serve_co2_kg: float | None = None
    total_co2_kg: float | None = None
    present_value_cost_usd: float | None = None
    revenue_usd: float | None = None
    npv_usd: float | None = None
    roi: float | None = None
    payback_s: float | None = None

    def total_at(self, output_tokens_per_day: float, horizon_s: float) -> float:
        """Total cost at another traffic level (the line of the module docstring). Units: USD."""
        if self.train_cost_usd is None or self.serve_cost_per_million_output_tokens_usd is None:
            raise SpecError(f"candidate {self.name} is not feasible: {self.reason}")
        tokens = output_tokens_per_day * horizon_s / S_PER_DAY
        return self.train_cost_usd + self.serve_cost_per_million_output_tokens_usd * tokens / 1e6

    def to_dict(self) -> dict[str, Any]:
        train: dict[str, Any] | None = None
        if self.train is not None:
            cfg = self.train.config["job"]
            train = {
                "devices": self.train.devices,
                "tp": self.train.tp,
                "pp": self.train.pp,
                "dp": self.train.dp,
                "zero": cfg["zero"],
                "recompute": cfg["recompute"],
                "global_batch": cfg["global_batch"],
                "seq_len": cfg["seq_len"],
                "mfu": self.train.mfu,
                "tokens_per_s": self.train.tokens_per_s,
            }
        serve: dict[str, Any] | None = None
        if self.serve is not None:
            serve = {
                "tp": self.serve.devices,
                "batch": self.serve.config["job"]["batch"],
                "max_batch": self.serve.max_batch,
                "tokens_per_s": self.serve.tokens_per_s,
                "time_per_output_token_s": self.serve.time_per_output_token_s,
                "ttft_s": self.serve.ttft_s,
                "cost_per_hour_usd": self.serve.cost_per_hour_usd,
                "energy_kwh_per_million_output_tokens": self.serve.energy_kwh_per_million_output_tokens,
                "co2_kg_per_million_output_tokens": self.serve.co2_kg_per_million_output_tokens,
            }
        return {
            "name": self.name,
            "role": self.role,
            "params": self.params,
            "train_tokens": self.train_tokens,
            "tokens_per_param": self.tokens_per_param,
            "predicted_loss": self.predicted_loss,
            "train_flops": self.train_flops,
            "inference_tokens": self.inference_tokens,
            "inference_flops": self.inference_flops,
            "feasible": self.feasible,
            "reason": self.reason,
            "train": train,
            "serve": serve,
            "train_cost_usd": self.train_cost_usd,
            "serve_cost_per_million_output_tokens_usd": self.serve_cost_per_million_output_tokens_usd,
            "serve_cost_usd": self.serve_cost_usd,
            "total_cost_usd": self.total_cost_usd,
            "train_time_s": self.train_time_s,
            "train_energy_kwh": self.train_energy_kwh,
            "serve_energy_kwh": self.serve_energy_kwh,
            "total_energy_kwh": self.total_energy_kwh,
            "train_co2_kg": self.train_co2_kg,
            "serve_co2_kg": self.serve_co2_kg,
            "total_co2_kg": self.total_co2_kg,
            "present_value_cost_usd": self.present_value_cost_usd,
            "revenue_usd": self.revenue_usd,
            "npv_usd": self.npv_usd,
            "roi": self.roi,
            "payback_s": self.payback_s,
        }


@dataclass(frozen=True)
class BreakEven:
    """Traffic at which two candidates cost the same over the horizon.

    Attributes:
        output_tokens_per_day: the traffic. Units: tokens/day.
        cheaper_below / cheaper_above: candidate names cheaper below and above it.
        total_cost_usd: the common total at that traffic. Units: USD.
    """

    output_tokens_per_day: float
    cheaper_below: str
    cheaper_above: str
    total_cost_usd: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "output_tokens_per_day": self.output_tokens_per_day,
            "cheaper_below": self.cheaper_below,
            "cheaper_above": self.cheaper_above,
            "total_cost_usd": self.total_cost_usd,
        }


@dataclass(frozen=True, kw_only=True)
class TcoResult:
    """The comparison. ``break_even`` lists where the cheapest choice changes as traffic grows (lower
    envelope); ``crossovers`` every pair of feasible candidates whose totals meet at positive traffic.

    Attributes:
        mode: ``target-loss`` or ``train-tokens``.
        target_loss: the quality target (nats/token) or None.
        scaling_law: constants used.
        traffic, horizon_s (s), discount_rate (annual, fraction), revenue_per_million_tokens_usd (USD).
        candidates: one :class:`CandidateCost` each, in input order.
        cheapest: name of the cheapest feasible candidate at the given traffic (None if none is feasible).
        assumptions: everything not given explicitly.
    """

    mode: str
    target_loss: float | None
    scaling_law: ScalingLaw
    traffic: Traffic
    horizon_s: float
    discount_rate: float
    revenue_per_million_tokens_usd: float | None
    candidates: list[CandidateCost]
    cheapest: str | None
    break_even: list[BreakEven]
    crossovers: list[BreakEven]
    assumptions: list[Assumption] = field(default_factory=list)

    def candidate(self, name: str) -> CandidateCost:
        for c in self.candidates:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of ``mlcost tco --json`` (docs/tco.md)."""
        return {
            "kind": "tco",
            "mode": self.mode,
            "target_loss": self.target_loss,
            "scaling_law": self.scaling_law.to_dict(),
            "traffic": self.traffic.to_dict(),
            "horizon_s": self.horizon_s,
            "discount_rate": self.discount_rate,
            "revenue_per_million_tokens_usd": self.revenue_per_million_tokens_usd,
            "candidates": [c.to_dict() for c in self.candidates],
            "cheapest": self.cheapest,
            "break_even": [b.to_dict() for b in self.break_even],
            "crossovers": [b.to_dict() for b in self.crossovers],
            "assumptions": [a.to_dict() for a in self.assumptions],
        }


# ---- candidates ---------------------------------------------------------------------------------------
def inference_tokens(traffic: Traffic, horizon_s: float) -> float:
    """Prompt + output tokens processed over the horizon (Sardana's D_inf). Units: tokens."""
    days = horizon_s / S_PER_DAY
    return traffic.output_tokens_per_day * days * traffic.processed_tokens_per_output_token


def target_loss_candidates(
    law: ScalingLaw,
    target_loss: float,
    *,
    traffic: Traffic,
    horizon_s: float,
    family: str = "llama",
    sweep: tuple[float, ...] = DEFAULT_SWEEP,
    models: list[ModelSpec] | None = None,
) -> list[Candidate]:
    """Candidates that each reach ``target_loss``: each trained on ``D(N, L)`` tokens.

    Without ``models``: the compute-optimal size for the target (``sweep`` multiples of it, the 1× one
    labelled ``compute-optimal``) plus the inference-aware optimum of Sardana et al. for the traffic over
    the horizon. With ``models``: those, each on the tokens it needs (error if one cannot reach it)."""
    law.check_target(target_loss)
    out: list[Candidate] = []
    if models:
        for m in models:
            n = count_params(m).total
            d = float(law.tokens_for_loss(n, target_loss))
            if not math.isfinite(d):
                raise SpecError(
                    f"{m.name} ({size_label(n)} params) cannot reach loss {target_loss:g} with any amount of data "
                    f"under the {law.name} law",
                    hint=f"sizes need more than {size_label(law.min_params_for_loss(target_loss))} params; "
                    "raise --target-loss or pick larger models",
                )
            out.append(Candidate(model=m, train_tokens=d, role="given"))
        return out
    n_opt = law.loss_optimal_params(target_loss)
    for mult in sweep:
        role = "compute-optimal" if mult == 1.0 else "sweep"
        m = model_for_params(n_opt * mult, family, name=f"{family}-{size_label(n_opt * mult)}")
        n = count_params(m).total
        d = float(law.tokens_for_loss(n, target_loss))
        if math.isfinite(d):
            out.append(Candidate(model=m, train_tokens=d, role=role))
    n_inf = law.inference_aware_params(target_loss, inference_tokens(traffic, horizon_s))
    name = f"{family}-{size_label(n_inf)}"
    if name in {c.model.name for c in out}:  # e.g. with little traffic it is the compute-optimal size
        name += "-ia"
    m = model_for_params(n_inf, family, name=name)
    out.append(
        Candidate(
            model=m,
            train_tokens=float(law.tokens_for_loss(count_params(m).total, target_loss)),
            role="inference-aware",
        )
    )
    return out


# ---- choosing layouts ---------------------------------------------------------------------------------
def choose_train_layout(
    model: ModelSpec, tokens: float, setup: TrainSetup, *, catalog: CatalogLike | None = None
) -> tuple[TrainEstimate | None, str | None]:
    """The fastest layout that fits (module docstring), chosen by the planner; ``(None, reason)`` when none
    does."""
    from mlcost.plan.build import plan_specs
    from mlcost.plan.train import TrainConstraints, TrainSearch, plan_train

    cl = setup.cluster
    res = plan_train(
        model,
        tokens,
        constraints=TrainConstraints(devices=(cl.device,), max_devices=cl.count),
        search=TrainSearch(
            seq_len=setup.seq_len,
            global_batch=setup.global_batch,
            precisions=(setup.precision,),
            counts=(cl.count,),
        ),
        objective="time",
        top=1,
        catalog=catalog,
    )
    if not res.plans:
        why = "; ".join(res.infeasible) or "no layout"
        return None, f"no layout of {model.name} fits {cl.count} × {cl.device}: {why}"
    job, _ = plan_specs(res.plans[0], tokens)
    return estimate_train(model, job, cl, catalog=catalog), None


def choose_serving(
    model: ModelSpec, traffic: Traffic, setup: ServeSetup, *, catalog: CatalogLike | None = None
) -> tuple[ServeEstimate | None, str | None]:
    """The cheapest serving configuration per output token (module docstring); ``(None, reason)`` if none."""
    best: ServeEstimate | None = None
    reasons: list[str] = []
    for tp in (setup.tp,) if setup.tp else TP_CHOICES:
        if model.n_heads % tp:
            continue
        base = ServeJob(
            prompt_len=traffic.prompt_len,
            output_len=traffic.output_len,
            batch=1,
            tp=tp,
            weight_precision=setup.weight_precision,
            kv_precision=setup.kv_precision,
        )
        cluster = setup.cluster.replace(count=tp)
        try:
            probe = estimate_serve(model, base, cluster, catalog=catalog)
        except SpecError as exc:
            reasons.append(f"TP {tp}: {exc.message}")
            continue
        hi = min(setup.max_batch, probe.max_batch)
        if hi < 1:
            reasons.append(f"TP {tp}: weights do not fit")
            continue

        def at(b: int, base: ServeJob = base, cluster: Cluster = cluster) -> ServeEstimate:
            return estimate_serve(model, base.replace(batch=b), cluster, catalog=catalog)

        est = at(hi)
        target = setup.tpot_target_s
        if target is not None and est.time_per_output_token_s > target:
            if probe.time_per_output_token_s > target:
                reasons.append(
                    f"TP {tp}: TPOT {probe.time_per_output_token_s * 1e3:.3g} ms at batch 1 misses the target"
                )
                continue
            lo = 1  # TPOT grows with batch: bisect the largest batch that meets the target
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if at(mid).time_per_output_token_s <= target:
                    lo = mid
                else:
                    hi = mid
            est = at(lo)
        if est.cost_per_million_output_tokens_usd is None:
            raise SpecError(
                f"no price for serving on {setup.cluster.device}",
                hint="choose another --serve-device/--provider, or give a price",
            )
        if best is None or est.cost_per_million_output_tokens_usd < (
            best.cost_per_million_output_tokens_usd or 0.0
        ):
            best = est
    if best is None:
        return None, "; ".join(reasons) or f"no TP divides the {model.n_heads} heads of {model.name}"
    return best, None


# ---- money over time ----------------------------------------------------------------------------------
def _discounted(
    train_usd: float, serve_usd_per_s: float, revenue_usd_per_s: float, horizon_s: float, rate: float
) -> tuple[float, float]:
    """Present values of (costs, revenue): training at t = 0, monthly flows at each month's end."""
    monthly = (1.0 + rate) ** (1.0 / 12.0) - 1.0
    months = horizon_s / S_PER_MONTH
    pv_cost, pv_rev = train_usd, 0.0
    for m in range(1, math.ceil(months - 1e-9) + 1):
        frac = min(1.0, months - (m - 1))
        factor = (1.0 + monthly) ** (-m)
        pv_cost += serve_usd_per_s * S_PER_MONTH * frac * factor
        pv_rev += revenue_usd_per_s * S_PER_MONTH * frac * factor
    return pv_cost, pv_rev


def _cost_candidate(
    cand: Candidate,
    *,
    law: ScalingLaw,
    traffic: Traffic,
    horizon_s: float,
    train: TrainSetup,
    serve: ServeSetup,
    discount_rate: float,
    revenue: float | None,
    catalog: CatalogLike | None,
) -> CandidateCost:
    n = count_params(cand.model).total
    d_inf = inference_tokens(traffic, horizon_s)
    common: dict[str, Any] = {
        "name": cand.model.name,
        "role": cand.role,
        "params": n,
        "train_tokens": cand.train_tokens,
        "tokens_per_param": cand.train_tokens / n,
        "predicted_loss": float(law.loss(n, cand.train_tokens)),
        "train_flops": TRAIN_FLOPS_PER_PARAM_TOKEN * n * cand.train_tokens,
        "inference_tokens": d_inf,
        "inference_flops": INFERENCE_FLOPS_PER_PARAM_TOKEN * n * d_inf,
    }
    t_est, t_reason = choose_train_layout(cand.model, cand.train_tokens, train, catalog=catalog)
    s_est, s_reason = choose_serving(cand.model, traffic, serve, catalog=catalog)
    if t_est is None or s_est is None:
        reason = "; ".join(r for r in (t_reason, s_reason) if r)
        return CandidateCost(**common, feasible=False, reason=reason, train=t_est, serve=s_est)
    if t_est.cost_usd is None:
        raise SpecError(
            f"no price for training on {train.cluster.device}",
            hint="choose another --train-device/--provider, or give a price",
        )
    cpm = s_est.cost_per_million_output_tokens_usd
    assert cpm is not None  # choose_serving raises without a price
    out_tokens_m = traffic.output_tokens_per_day * horizon_s / S_PER_DAY / 1e6
    serve_usd = cpm * out_tokens_m
    serve_kwh = s_est.energy_kwh_per_million_output_tokens * out_tokens_m
    serve_co2 = s_est.co2_kg_per_million_output_tokens * out_tokens_m
    total = t_est.cost_usd + serve_usd
    tokens_m_per_s = traffic.output_tokens_per_day / S_PER_DAY / 1e6
    rev_per_s = (revenue or 0.0) * tokens_m_per_s
    pv_cost, pv_rev = _discounted(t_est.cost_usd, cpm * tokens_m_per_s, rev_per_s, horizon_s, discount_rate)
    money: dict[str, Any] = {"present_value_cost_usd": pv_cost}
    if revenue is not None:
        revenue_usd = revenue * out_tokens_m
        margin_per_s = (revenue - cpm) * tokens_m_per_s
        money.update(
            revenue_usd=revenue_usd,
            npv_usd=pv_rev - pv_cost,
            roi=(revenue_usd - total) / total,
            payback_s=t_est.cost_usd / margin_per_s if margin_per_s > 0 else None,
        )
    return CandidateCost(
        **common,
        feasible=True,
        reason=None,
        train=t_est,
        serve=s_est,
        train_cost_usd=t_est.cost_usd,
        serve_cost_per_million_output_tokens_usd=cpm,
        serve_cost_usd=serve_usd,
        total_cost_usd=total,
        train_time_s=t_est.total_time_s,
        train_energy_kwh=t_est.energy_kwh,
        serve_energy_kwh=serve_kwh,
        total_energy_kwh=t_est.energy_kwh + serve_kwh,
        train_co2_kg=t_est.co2_kg,
        serve_co2_kg=serve_co2,
        total_co2_kg=t_est.co2_kg + serve_co2,
        **money,
    )


# ---- break-even -----------------------------------------------------------------------------------------
def _lines(costs: list[CandidateCost], horizon_s: float) -> list[tuple[str, float, float]]:
    """(name, intercept USD, slope USD per (token/day)) of each feasible candidate's total."""
    days = horizon_s / S_PER_DAY
    return [
        (c.name, float(c.train_cost_usd), float(c.serve_cost_per_million_output_tokens_usd) * days / 1e6)
        for c in costs
        if c.train_cost_usd is not None and c.serve_cost_per_million_output_tokens_usd is not None
    ]


def break_even_points(costs: list[CandidateCost], horizon_s: float) -> list[BreakEven]:
    """Where the cheapest candidate changes as traffic grows from 0 (the lower envelope of the lines)."""
    lines = _lines(costs, horizon_s)
    if not lines:
        return []
    name, a, b = min(lines, key=lambda ln: (ln[1], ln[2]))
    t_now, out = 0.0, list[BreakEven]()
    while True:
        nxt: tuple[float, float, tuple[str, float, float]] | None = None
        for ln in lines:
            if ln[2] < b:
                t = (ln[1] - a) / (b - ln[2])
                if t > t_now * (1 + 1e-12) and (nxt is None or (t, ln[2]) < nxt[:2]):
                    nxt = (t, ln[2], ln)
        if nxt is None:
            return out
        t, _, ln = nxt
        out.append(BreakEven(t, name, ln[0], a + b * t))
        name, a, b = ln
        t_now = t


def crossovers(costs: list[CandidateCost], horizon_s: float) -> list[BreakEven]:
    """Every pair whose totals meet at a positive traffic, sorted by traffic."""
    lines = _lines(costs, horizon_s)
    out = []
    for i, (ni, ai, bi) in enumerate(lines):
        for nj, aj, bj in lines[i + 1 :]:
            if bi == bj:
                continue
            t = (aj - ai) / (bi - bj)
            if t > 0:
                below, above = (ni, nj) if ai < aj else (nj, ni)
                out.append(BreakEven(t, below, above, ai + bi * t))
    return sorted(out, key=lambda x: x.output_tokens_per_day)


# ---- the entry point ------------------------------------------------------------------------------------
def tco(
    candidates: list[Candidate],
    *,
    law: ScalingLaw,
    traffic: Traffic,
    horizon_s: float,
    train: TrainSetup,
    serve: ServeSetup,
    target_loss: float | None = None,
    discount_rate: float = 0.0,
    revenue_per_million_tokens_usd: float | None = None,
    catalog: CatalogLike | None = None,
) -> TcoResult:
    """Cost each candidate (training once, serving ``traffic`` for ``horizon_s`` after training) and compare.

    ``target_loss`` only labels the mode (candidates already carry their tokens: see
    :func:`target_loss_candidates`). Raises :class:`SpecError` for empty or duplicate candidates, a
    non-positive horizon, a negative discount rate or revenue."""
    if not candidates:
        raise SpecError("no candidate models", hint="give --models or --target-loss")
    names = [c.model.name for c in candidates]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SpecError(f"candidate names repeat: {', '.join(dup)}", hint="give each model once")
    if not math.isfinite(horizon_s) or horizon_s <= 0:
        raise SpecError(f"horizon must be positive, got {horizon_s!r} s")
    if not math.isfinite(discount_rate) or discount_rate < 0:
        raise SpecError(f"discount rate must be a non-negative fraction per year, got {discount_rate!r}")
    if revenue_per_million_tokens_usd is not None and not revenue_per_million_tokens_usd >= 0:
        raise SpecError(
            f"revenue per million tokens must be non-negative, got {revenue_per_million_tokens_usd!r}"
        )
    costs = [
        _cost_candidate(
            c,
            law=law,
            traffic=traffic,
            horizon_s=horizon_s,
            train=train,
            serve=serve,
            discount_rate=discount_rate,
            revenue=revenue_per_million_tokens_usd,
            catalog=catalog,
        )
        for c in candidates
    ]
    feasible = [c for c in costs if c.total_cost_usd is not None]
    cheapest = min(feasible, key=lambda c: float(c.total_cost_usd or 0.0)).name if feasible else None
    return TcoResult(
        mode="target-loss" if target_loss is not None else "train-tokens",
        target_loss=target_loss,
        scaling_law=law,
        traffic=traffic,
        horizon_s=horizon_s,
        discount_rate=discount_rate,
        revenue_per_million_tokens_usd=revenue_per_million_tokens_usd,
        candidates=costs,
        cheapest=cheapest,
        break_even=break_even_points(costs, horizon_s),
        crossovers=crossovers(costs, horizon_s),
        assumptions=_assumptions(costs, law, traffic, horizon_s, train, serve, discount_rate),
    )


def _assumptions(
    costs: list[CandidateCost],
    law: ScalingLaw,
    traffic: Traffic,
    horizon_s: float,
    train: TrainSetup,
    serve: ServeSetup,
    discount_rate: float,
) -> list[Assumption]:
    notes = [
        Assumption(
            "scaling_law",
            f"L = {law.E:g} + {law.A:g}/N^{law.alpha:g} + {law.B:g}/D^{law.beta:g}",
            law.source + "; losses in nats/token on the law's own data, read them as relative",
        ),
        Assumption("horizon_s", horizon_s, "serving period after training; training time is reported apart"),
        Assumption(
            "inference_tokens_per_output_token",
            traffic.processed_tokens_per_output_token,
            "(prompt + output) / output: Sardana's D_inf counts prompt and output tokens, 2·N FLOPs each",
        ),
        Assumption(
            "train_layout",
            f"{train.cluster.count} × {train.cluster.device}, seq {train.seq_len or 'model default'}, "
            f"global batch {train.global_batch or 'model default'}",
            "fastest fitting layout chosen by the planner (docs/tco.md); defaults from mlcost.plan.defaults, "
            "as estimate and plan use them",
        ),
        Assumption(
            "serve_config",
            f"{serve.cluster.device} {serve.weight_precision}, batch <= {serve.max_batch}"
            + (f", TPOT <= {serve.tpot_target_s * 1e3:g} ms" if serve.tpot_target_s else ""),
            "largest batch that fits (and meets the TPOT target); TP with the lowest $/M output tokens",
        ),
        Assumption("discount_rate", discount_rate, "annual; monthly flows discounted at (1+r)^(1/12)−1"),
    ]
    seen = {a.name for a in notes}
    for c in costs:
        for prefix, est in (("train.", c.train), ("serve.", c.serve)):
            if est is None:
                continue
            for a in est.assumptions:
                key = prefix + a.name
                if key not in seen and a.name in (
                    "device",
                    "efficiency_profile",
                    "price_usd_per_device_h",
                    "pue",
                    "carbon_kg_per_kwh",
                    "utilisation",
                    "batching",
                ):
                    seen.add(key)
                    notes.append(Assumption(key, a.value, a.source))
    return notes
