"""Turn a candidate into a :class:`~mlcost.plan.types.TrainPlan`, and a plan back into the
``(TrainJob, Cluster)`` / ``mlcost estimate train`` command that reproduces it."""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from typing import Any

from mlcost.plan.candidates import CandidateTable, DeviceEval
from mlcost.plan.space import RECOMPUTE_NAMES
from mlcost.plan.spot import SpotModel
from mlcost.plan.types import PlanEstimate, SpotOutcome, TrainPlan
from mlcost.spec.cluster import Cluster
from mlcost.spec.job import TrainJob


def _num(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def make_plan(
    evals: Sequence[DeviceEval],
    c: CandidateTable,
    i: int,
    rank: int | None,
    *,
    model_name: str,
    tokens: float,
    seq_len: int,
    global_batch: int,
    search: Any,
    spot: SpotModel,
    catalog_files: Sequence[str] = (),
) -> TrainPlan:
    ev = evals[int(c.dev[i])]
    j, r = int(c.lay[i]), int(c.row[i])
    lay, k, rows = ev.layouts, ev.kernel, ev.rows
    price = float(rows.usd_per_device_h[r])
    tp = int(lay.tp[j])
    pue = float(rows.pue[r])
    carbon = float(rows.carbon_kg_per_kwh[r])
    spot_out = None
    if rows.pricing[r] == "spot":
        fb = int(c.fallback[i])
        t_od = float(c.on_demand_time_s[i])
        spot_out = SpotOutcome(
            expected_time_s=float(c.time_s[i]),
            spot_time_s=float(c.spot_time_s[i]),
            on_demand_time_s=t_od,
            uses_fallback=t_od > 0,
            switch_to_on_demand_by_s=_num(float(c.switch_s[i])),
            fallback_provider=rows.provider[fb] if fb >= 0 else None,
            fallback_region=rows.region[fb] if fb >= 0 else None,
            fallback_usd_per_device_h=float(rows.usd_per_device_h[fb]) if fb >= 0 else None,
            fallback_worst_cost_usd=_num(float(c.worst_cost_usd[i])),
            model=spot.to_dict(),
        )
    plan = TrainPlan(
        rank=rank,
        device=ev.hw.device.id,
        count=int(lay.count[j]),
        tp=tp,
        pp=int(lay.pp[j]),
        virtual_stages=int(lay.virtual_stages[j]),
        dp=int(lay.dp[j]),
        zero=int(lay.zero[j]),
        micro_batch=int(lay.micro_batch[j]),
        recompute=RECOMPUTE_NAMES[int(lay.recompute[j])],
        precision=lay.precisions[int(lay.precision[j])],
        provider=rows.provider[r],
        region=rows.region[r],
        pricing=rows.pricing[r],
        total_time_s=float(c.time_s[i]),
        cost_usd=_num(float(c.cost_usd[i])),
        energy_kwh=float(c.energy_kwh[i]),
        co2_kg=float(c.co2_kg[i]),
        fits=bool(k["fits"][j]),
        sequence_parallel=bool(tp > 1)
        if search.sequence_parallel is None
        else bool(search.sequence_parallel),
        flash_attention=search.flash_attention,
        overlap_grad_reduce=search.overlap_grad_reduce,
        goodput=search.goodput,
        optimizer=search.optimizer,
        seq_len=seq_len,
        global_batch=global_batch,
        grad_accum_steps=float(k["grad_accum_steps"][j]),
        step_time_s=float(k["step_time_s"][j]),
        tokens_per_s=float(k["tokens_per_s"][j]),
        mfu=float(k["mfu"][j]),
        memory_per_device_bytes=float(k["memory_total_bytes"][j]),
        memory_capacity_bytes=float(ev.hw.device.memory_bytes),
        device_hours=float(k["device_hours"][j]),
        price_usd_per_device_h=_num(price),
        instance=rows.instance[r] or None,
        price_source=rows.source[r],
        pue=pue,
        carbon_kg_per_kwh=carbon,
        carbon=rows.carbon[r],
        efficiency_profile=ev.hw.profile.device,
        error_band_rel=ev.hw.profile.error_band_rel,
        estimate=PlanEstimate(
            total_time_s=float(k["total_time_s"][j]),
            cost_usd=None if math.isnan(price) else float(k["device_hours"][j]) * price,
            energy_kwh=float(k["energy_kwh"][j]) * pue,
            co2_kg=float(k["energy_kwh"][j]) * pue * carbon,
        ),
        spot=spot_out,
        command="",
    )
    return plan.replace(command=estimate_command(plan, model_name, tokens, catalog_files))


def plan_specs(plan: TrainPlan | dict[str, Any], tokens: float) -> tuple[TrainJob, Cluster]:
    """The (TrainJob, Cluster) that ``estimate_train`` takes for a plan (a TrainPlan or its full dict)."""
    p = plan.to_dict() if isinstance(plan, TrainPlan) else plan
    job = TrainJob(
        tokens=tokens,
        seq_len=p["seq_len"],
        global_batch=p["global_batch"],
        micro_batch=p["micro_batch"],
        precision=p["precision"],
        optimizer=p["optimizer"],
        tp=p["tp"],
        pp=p["pp"],
        virtual_stages=p.get("virtual_stages", 1),
        zero=p["zero"],
        recompute=p["recompute"],
        sequence_parallel=p["sequence_parallel"],
        flash_attention=p["flash_attention"],
        overlap_grad_reduce=p["overlap_grad_reduce"],
        goodput=p["goodput"],
    )
    cluster = Cluster(
        device=p["device"], count=p["count"], provider=p["provider"], region=p["region"], pricing=p["pricing"]
    )
    return job, cluster


def estimate_command(
    plan: TrainPlan, model_name: str, tokens: float, catalog_files: Sequence[str] = ()
) -> str:
    """The ``mlcost estimate train`` line that reproduces the plan's uninterrupted time and cost."""
    args = [
        "mlcost", "estimate", "train",
        "--model", model_name,
        "--device", plan.device,
        "--gpus", str(plan.count),
        "--tp", str(plan.tp),
        "--pp", str(plan.pp),
        "--virtual-stages", str(plan.virtual_stages),
        "--micro-batch", str(plan.micro_batch),
        "--global-batch", str(plan.global_batch),
        "--seq-len", str(plan.seq_len),
        "--zero", str(plan.zero),
        "--recompute", plan.recompute,
        "--precision", plan.precision,
        "--optimizer", plan.optimizer,
        "--goodput", f"{plan.goodput:.17g}",
        "--tokens", f"{tokens:.17g}",
    ]  # fmt: skip
    if "/" in plan.efficiency_profile:  # a framework family's row: estimate with the same profile
        args += ["--framework", plan.efficiency_profile.split("/", 1)[1]]
    if plan.sequence_parallel:
        args.append("--sequence-parallel")
    args.append("--flash-attention" if plan.flash_attention else "--no-flash-attention")
    args.append("--overlap-grad-reduce" if plan.overlap_grad_reduce else "--no-overlap-grad-reduce")
    if plan.provider is not None:
        args += ["--provider", plan.provider, "--region", str(plan.region), "--pricing", plan.pricing]
    for path in catalog_files:
        args += ["--catalog", str(path)]
    return shlex.join(args)
