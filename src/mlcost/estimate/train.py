"""``estimate_train``: predict a training job (FLOPs, memory, time, energy, $, CO2) with assumptions
and an error band. The numbers come from :func:`mlcost.estimate.kernel.train_kernel`, the same
vectorised function the planner calls."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlcost.catalog.protocol import CatalogLike
from mlcost.catalog.schema import EfficiencyProfile
from mlcost.errors import SpecError
from mlcost.estimate.context import (
    FP8_MATMUL_EFF_SCALE,
    FP8_QUANTIZE_BYTES_PER_ELEMENT,
    Hardware,
    compute_peaks,
    resolve_hardware,
)
from mlcost.estimate.flops import RECOMPUTE_CODES
from mlcost.estimate.kernel import (
    OPTIMIZER_TRAFFIC_BYTES,
    OPTIMIZER_TRAFFIC_BYTES_EAGER,
    TrainInputs,
    train_kernel,
)
from mlcost.estimate.memory import (
    FP8_PARAM_BYTES,
    OPTIMIZER_TEMP_TENSORS_EAGER,
    STATE_BYTES,
    activation_bytes_per_element,
    linear_input_bytes,
    precision_class,
    saved_input_bytes,
)
from mlcost.estimate.params import count_params
from mlcost.estimate.result import Assumption, ErrorBand, MemoryBreakdown, TrainEstimate
from mlcost.estimate.timing import MOE_DISPATCHER_CODES, SCHEDULE_CODES
from mlcost.spec.cluster import Cluster
from mlcost.spec.job import TrainJob
from mlcost.spec.model import ModelSpec
from mlcost.spec.validate import context_fits
from mlcost.units import format_bytes

#: Extra upper error band for whole-job totals: production runs lose time the step model does not see
#: (failures, restarts, evaluation, stragglers). Model-card GPU-hours of Llama-2/LLaMA-1 include these.
PRODUCTION_OVERHEAD_REL = 0.25


def validate_layout(model: ModelSpec, job: TrainJob, devices: int) -> int:
    """Check that the parallel layout is possible; return the data-parallel degree."""
    tp, pp, v = job.tp, job.pp, job.virtual_stages
    if devices % (tp * pp):
        raise SpecError(
            f"{devices} devices are not divisible by TP×PP = {tp}×{pp} = {tp * pp}",
            hint="the data-parallel degree is devices / (TP·PP) and must be a whole number",
        )
    dp = devices // (tp * pp)
    if model.n_heads % tp:
        raise SpecError(
            f"TP = {tp} does not divide the {model.n_heads} attention heads of {model.name}",
            hint="choose a TP that divides the number of heads",
        )
    if model.kv_heads % tp and tp % model.kv_heads:
        raise SpecError(
            f"TP = {tp} and the {model.kv_heads} key/value heads of {model.name} do not divide each other",
            hint="TP must divide the KV heads, or be a multiple of them (heads are then replicated)",
        )
    if model.n_layers < pp * v:
        what = f"--pp {pp} × --virtual-stages {v} = {pp * v} chunks" if v > 1 else f"--pp {pp} stages"
        raise SpecError(
            f"{what} for the {model.n_layers} layers of {model.name}: a stage would get no layer",
            hint=f"use at most {model.n_layers} pipeline chunks (PP × virtual stages)",
        )
    if job.ep > 1:
        if not model.is_moe:
            raise SpecError(
                f"--ep {job.ep}: {model.name} has no experts",
                hint="expert parallelism applies to mixture-of-experts models; drop --ep",
            )
        if model.n_experts % job.ep:
            raise SpecError(
                f"--ep {job.ep} does not divide the {model.n_experts} experts of {model.name}",
                hint="choose an EP degree that divides the expert count, e.g. "
                + ", ".join(str(d) for d in _divisors(model.n_experts) if d > 1)[:60],
            )
        if dp % job.ep:
            raise SpecError(
                f"--ep {job.ep} does not divide the data-parallel degree {dp} (devices / (TP×PP))",
                hint="expert-parallel ranks are carved out of the data-parallel group: EP must divide DP",
            )
    if job.global_batch % (job.micro_batch * dp):
        raise SpecError(
            f"global batch {job.global_batch} is not divisible by micro-batch × DP = {job.micro_batch}×{dp}",
            hint="global batch = micro-batch × data-parallel degree × gradient-accumulation steps",
        )
    if job.schedule == "dualpipe" and (job.global_batch // (job.micro_batch * dp)) % 2:
        raise SpecError(
            f"--schedule dualpipe needs an even number of micro-batches per step, got "
            f"{job.global_batch // (job.micro_batch * dp)} (global batch / (micro-batch × DP))",
            hint="DualPipe feeds half the micro-batches from each end of the pipeline: change --global-batch "
            "or --micro-batch",
        )
    context_fits(model.name, model.max_seq_len, job.seq_len, "--seq-len")
    return dp


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def hardware_fields(hw: Any) -> dict[str, Any]:
    """The kernel inputs that come from the device row, its node and its efficiency profile. ``hw`` is a
    :class:`Hardware` or anything with ``device``, ``profile``, ``devices_per_node``,
    ``intra_bw_bytes_per_s`` and ``inter_bw_bytes_per_s`` (the planner's per-device facts)."""
    prof = hw.profile
    return {
        "mem_bw_bytes_per_s": hw.device.mem_bw_bytes_per_s,
        "memory_bytes": hw.device.memory_bytes,
        "devices_per_node": hw.devices_per_node,
        "intra_bw_bytes_per_s": hw.intra_bw_bytes_per_s,
        "inter_bw_bytes_per_s": hw.inter_bw_bytes_per_s,
        "tdp_w": hw.device.tdp_w,
        "matmul_eff_max": prof.matmul_eff_max,
        "matmul_half_dim": prof.matmul_half_dim,
        "attention_eff": prof.attention_eff,
        "mem_bw_eff": prof.mem_bw_eff,
        "intra_comm_eff": prof.intra_comm_eff,
        "inter_comm_eff": prof.inter_comm_eff,
        "dp_overlap": prof.dp_overlap,
        "power_frac": prof.power_frac,
        "framework_overhead_bytes": prof.framework_overhead_bytes,
        "activation_overhead_frac": prof.activation_overhead_frac,
        "step_overhead_s": prof.step_overhead_s,
        "layer_overhead_s": prof.layer_overhead_s,
        "tp_comm_overlap": prof.extra.get("tp_comm_overlap", 0.0),
        "ring_rails": prof.extra.get("ring_rails", 1.0),
        "selective_activation_scale": prof.extra.get("selective_activation_scale", 1.0),
        "recompute_transient": prof.extra.get("recompute_transient", 1.0),
        "logit_bytes": prof.extra.get("logit_bytes", float("nan")),
        "logits_in_layer_backward": prof.extra.get("logits_in_layer_backward", 1.0),
        "first_touch_bytes_per_s": prof.extra.get("first_touch_bytes_per_s", np.inf),
        "copy_bytes_per_s": prof.extra.get("copy_bytes_per_s", np.inf),
    }


def ep_nodes(job: TrainJob, devices_per_node: int) -> float:
    """Nodes the expert-parallel group spans: EP ranks spaced TP apart, node-contiguous (at least 1, at
    most EP)."""
    return float(min(max(1.0, job.ep * job.tp / devices_per_node), job.ep))


def moe_node_limit(model: ModelSpec, job: TrainJob, devices_per_node: int) -> float:
    """The most nodes one token is dispatched to: ``job.moe_node_limit``, else the model's group-limited
    routing laid out node-contiguously (a token picks g of G groups; the N nodes hold G/N groups each when
    N ≤ G, a group spans N/G nodes when N > G: at most min(N, g·max(1, N/G)) nodes), else no limit (inf).
    Raises :class:`SpecError` for a limit above the nodes the EP group spans."""
    nodes = ep_nodes(job, devices_per_node)
    if job.moe_node_limit is not None:
        if model.is_moe and job.moe_node_limit > nodes:
            raise SpecError(
                f"--moe-node-limit {job.moe_node_limit} exceeds the {nodes:g} node(s) the expert-parallel "
                f"group spans (EP {job.ep} × TP {job.tp} GPUs, {devices_per_node} per node)",
                hint=f"give --moe-node-limit between 1 and {nodes:g}, or leave it out (no limit)",
            )
        return float(job.moe_node_limit)
    if model.expert_groups:
        g, groups = model.expert_groups_per_token, model.expert_groups
        return float(min(nodes, g * max(1.0, nodes / groups)))
    return float("inf")


def _alltoall_note(job: TrainJob, r: dict[str, float]) -> str:
    """The all-to-all's node-aware split in words (kernel outputs ``ep_*``)."""
    nodes, per_token = r["ep_nodes"], r["ep_nodes_per_token"]
    limit = f", node limit {job.moe_node_limit}" if job.moe_node_limit is not None else ""
    how = (
        "one copy per (token, expert) pair"
        if job.moe_dispatcher == "alltoall"
        else "a token once per destination node over the network, once per destination GPU over NVLink"
    )
    return (
        f"{job.moe_dispatcher} dispatcher ({how}); uniform routing (each token's experts uniform over the "
        f"experts), EP ranks node-contiguous over {nodes:g} node(s){limit}: "
        f"{per_token:.2f} distinct nodes per token; per step {format_bytes(r['ep_intra_bytes_per_step'])} over "
        f"NVLink ({r['ep_intra_s_per_step']:.3g} s) and {format_bytes(r['ep_inter_bytes_per_step'])} over the "
        f"network ({r['ep_inter_s_per_step']:.3g} s) per device, in parallel (the slower leg counts): "
    )


def precision_fields(
    precision: str, optimizer: str, device: Any, profile: Any, *, fp8_params: bool = False
) -> dict[str, float]:
    """The kernel inputs that follow from the training precision on one device and efficiency profile:
    bytes of activations, saved GEMM inputs and model states, the peaks and the fp8 quantize traffic. One
    place for :func:`build_inputs` and the planner (which calls it once per candidate precision)."""
    w, g, o = STATE_BYTES[(precision_class(precision), optimizer)]
    return {
        "act_bytes": activation_bytes_per_element(precision),
        "linear_input_bytes": linear_input_bytes(precision),
        "saved_input_bytes": saved_input_bytes(
            precision, profile.extra.get("fp8_quantized_saved_inputs", 0.0)
        ),
        "weight_bytes": FP8_PARAM_BYTES if fp8_params else w,
        "grad_bytes": g,
        "optimizer_bytes": o,
        **compute_peaks(device, precision),
    }


def build_inputs(model: ModelSpec, job: TrainJob, hw: Hardware, dp: int) -> TrainInputs:
    """The kernel inputs for one (model, job, resolved hardware)."""
    return TrainInputs(
        tp=job.tp,
        pp=job.pp,
        dp=dp,
        micro_batch=job.micro_batch,
        global_batch=job.global_batch,
        seq_len=job.seq_len,
        virtual_stages=job.virtual_stages,
        zero=job.zero,
        recompute=RECOMPUTE_CODES[job.recompute],
        sequence_parallel=job.sequence_parallel,
        flash_attention=job.flash_attention,
        overlap_grad_reduce=job.overlap_grad_reduce,
        fused_elementwise=job.fused_elementwise,
        goodput=job.goodput,
        tokens=job.tokens,
        optimizer_traffic_bytes=(
            OPTIMIZER_TRAFFIC_BYTES if job.fused_elementwise else OPTIMIZER_TRAFFIC_BYTES_EAGER
        )[job.optimizer],
        optimizer_temp_tensors=0.0 if job.fused_elementwise else OPTIMIZER_TEMP_TENSORS_EAGER[job.optimizer],
        ep=job.ep,
        ep_overlap=job.ep_overlap,
        capacity_factor=1.0 if job.capacity_factor is None else job.capacity_factor,
        schedule=SCHEDULE_CODES[job.schedule],
        moe_dispatcher=MOE_DISPATCHER_CODES[job.moe_dispatcher],
        moe_node_limit=moe_node_limit(model, job, hw.devices_per_node),
        **precision_fields(job.precision, job.optimizer, hw.device, hw.profile, fp8_params=job.fp8_params),
        price_usd_per_device_h=hw.price_usd_per_device_h if hw.price_usd_per_device_h is not None else np.nan,
        pue=hw.pue,
        carbon_kg_per_kwh=hw.carbon_kg_per_kwh,
        **hardware_fields(hw),
    )


def _fit_suggestions(model: ModelSpec, job: TrainJob, hw: Hardware, capacity: float) -> list[str]:
    """Single changes (and one combination) that make a job fit, each checked with the kernel."""
    tries: list[tuple[str, dict[str, Any]]] = []
    if job.recompute != "full":
        tries.append(("--recompute full", {"recompute": "full"}))
    if hw.count // (job.tp * job.pp) > 1:
        for z in range(job.zero + 1, 4):
            tries.append((f"--zero {z}", {"zero": z}))
    if job.tp > 1 and not job.sequence_parallel:
        tries.append(("--sequence-parallel", {"sequence_parallel": True}))
    if job.micro_batch > 1:
        tries.append(("--micro-batch 1", {"micro_batch": 1}))
    if not job.flash_attention:
        tries.append(("--flash-attention", {"flash_attention": True}))
    for tp in (2, 4, 8):
        if tp > job.tp:
            tries.append((f"--tp {tp}", {"tp": tp}))
    for pp in (2, 4, 8, 16):
        if pp > job.pp:
            tries.append((f"--pp {pp}", {"pp": pp}))
    combo = {"recompute": "full", "micro_batch": 1}
    if hw.count // (job.tp * job.pp) > 1:
        combo["zero"] = 3
    tries.append(("--recompute full --micro-batch 1" + (" --zero 3" if "zero" in combo else ""), combo))
    out: list[str] = []
    for label, change in tries:
        try:
            alt = job.replace(**change)
            dp = validate_layout(model, alt, hw.count)
        except SpecError:
            continue
        r = train_kernel(model, build_inputs(model, alt, hw, dp))
        total = float(r["memory_total_bytes"])
        if total <= capacity:
            out.append(f"{label}: {format_bytes(total)} per device, step {float(r['step_time_s']):.3g} s")
        if len(out) >= 5:
            break
    if not out:
        out.append(_devices_needed(model, job, hw, capacity))
    return out


def _devices_needed(model: ModelSpec, job: TrainJob, hw: Hardware, capacity: float) -> str:
    """The smallest device count (doubling) at which ZeRO-3 + full recomputation + micro-batch 1 fits."""
    import dataclasses

    count = hw.count
    for _ in range(12):
        count *= 2
        dp = count // (job.tp * job.pp)
        if dp == 0:
            continue
        alt = job.replace(
            zero=3, recompute="full", micro_batch=1, global_batch=max(job.global_batch // dp, 1) * dp
        )
        try:
            validate_layout(model, alt, count)
        except SpecError:
            continue
        r = train_kernel(model, build_inputs(model, alt, dataclasses.replace(hw, count=count), dp))
        if float(r["memory_total_bytes"]) <= capacity:
            return (
                f"no single change fits {hw.count} devices: with --zero 3 --recompute full --micro-batch 1 it fits on "
                f"{count} × {hw.device.id} ({format_bytes(float(r['memory_total_bytes']))} per device)"
            )
    return f"does not fit on up to {count} × {hw.device.id}: use a device with more memory"


def _schedule_note(model: ModelSpec, job: TrainJob) -> Assumption:
    chunks = job.pp * job.virtual_stages
    uneven = (
        ""
        if model.n_layers % chunks == 0
        else (
            f"; uneven split: {model.n_layers} layers over {chunks} chunks, the fullest holds "
            f"{-(-model.n_layers // chunks)} and sets the pace"
        )
    )
    if job.schedule == "dualpipe":
        return Assumption(
            "pipeline_schedule",
            "DualPipe",
            "DeepSeek-V3 (arXiv 2412.19437 §3.2.1, Table 2): bubble (p/2−1)(F&B+B−3W) with F = W = 1, "
            "B = 2 (3 with full recompute), F&B = F+B; two stages' parameters per rank; p+1 micro-batches "
            "in flight; expert all-to-all and PP transfers run under the paired chunk's compute, never "
            "more than it takes" + uneven,
        )
    if job.schedule == "zb-h1":
        return Assumption(
            "pipeline_schedule",
            "ZB-H1",
            "zero-bubble ZB-H1 (Qi et al. 2023, arXiv 2401.10241 §3.1): bubble (p−1)(T_F+T_B−T_W), 1/3 of "
            "1F1B's with T_F = T_B = T_W (1/2 with full recompute); 1F1B's activation memory" + uneven,
        )
    if job.virtual_stages > 1:
        return Assumption(
            "pipeline_schedule",
            f"1F1B interleaved v={job.virtual_stages}",
            "Narayanan et al. 2021: bubble (p−1)/v" + uneven,
        )
    return Assumption(
        "pipeline_schedule", "1F1B", "Narayanan et al. 2021: bubble (p−1)/m of the step" + uneven
    )


def _memory_band_note(profile: EfficiencyProfile) -> Assumption:
    """The memory error band of the profile: ``extra.memory_error_rel`` is the largest error on published
    peak memory held out from its family's fit (benchmarks/fit_framework_profiles.py)."""
    band = profile.extra.get("memory_error_rel")
    if band is None:
        return Assumption(
            "memory_error_band",
            None,
            f"not checked against published peak memory for {profile.device}: activation counts of "
            "Korthikanti et al. 2022 + model states; a framework's checkpointing policy, loss and allocator "
            "reserve can move the peak by tens of percent (see --framework)",
        )
    return Assumption(
        "memory_error_band",
        float(band),
        f"±{band:.0%}: largest error on held-out published peak memory of the {profile.device} family "
        "(tests/estimate/test_golden_memory.py)",
    )


#: A precision whose peak is this many times below the device's best one gets a note in the assumptions
#: (e.g. bf16 on a CPU without bf16 units runs ~35x slower than fp32).
SLOW_PRECISION_FACTOR = 4.0


def estimate_train(
    model: ModelSpec,
    job: TrainJob,
    cluster: Cluster,
    *,
    catalog: CatalogLike | None = None,
    profile: EfficiencyProfile | None = None,
    framework: str | None = None,
) -> TrainEstimate:
    """Predict a training job. Raises :class:`SpecError` for impossible layouts; a job that does not fit
    in memory is not an error (``fits`` is False and ``fit_suggestions`` says what would make it fit)."""
    hw = resolve_hardware(cluster, catalog, profile, framework)
    dp = validate_layout(model, job, cluster.count)
    r = {k: float(v) for k, v in train_kernel(model, build_inputs(model, job, hw, dp)).items()}
    counts = count_params(model)
    capacity = hw.device.memory_bytes
    memory = MemoryBreakdown(
        weights=r["memory_weights_bytes"],
        gradients=r["memory_gradients_bytes"],
        optimizer=r["memory_optimizer_bytes"],
        activations=r["memory_activations_bytes"],
        other=r["memory_other_bytes"],
        not_concurrent=r["memory_not_concurrent_bytes"],
        total=r["memory_total_bytes"],
        capacity=capacity,
    )
    fits = bool(r["fits"])
    cost = None if hw.price_usd_per_device_h is None else r["cost_usd"]
    rel = hw.profile.error_band_rel
    high = rel + PRODUCTION_OVERHEAD_REL
    ranges = {"step_time_s": (r["step_time_s"] * (1 - rel), r["step_time_s"] * (1 + rel))}
    for k in ("total_time_s", "device_hours", "energy_kwh", "co2_kg"):
        ranges[k] = (r[k] * (1 - rel), r[k] * (1 + high))
    if cost is not None:
        ranges["cost_usd"] = (cost * (1 - rel), cost * (1 + high))
    band = ErrorBand(
        relative=rel,
        source=(
            f"efficiency profile {hw.profile.device}: {hw.profile.source}. Totals: -{rel:.0%}/+{high:.0%}: failures, "
            f"restarts, evaluation and stalls lengthen real runs (beyond goodput {job.goodput:g}), never shorten them"
        ),
        ranges=ranges,
    )
    notes = list(hw.assumptions)
    notes += [
        Assumption(
            "precision",
            job.precision,
            "mixed precision keeps fp32 master weights and optimizer states"
            if precision_class(job.precision) == "mixed"
            else "weights, gradients and states in fp32",
        ),
        Assumption(
            "goodput",
            job.goodput,
            "share of wall time in useful steps (failures, restarts, evaluation not "
            "counted when 1.0); pass --goodput",
        ),
        Assumption(
            "attention_flops",
            "full s×s",
            "attention scores counted over the full matrix (Megatron, FlopCounterMode)",
        ),
        _schedule_note(model, job),
        Assumption(
            "objective",
            model.resolved_objective,
            {
                "clm": "causal LM: the vocabulary head runs on every token",
                "mlm": "masked LM (BertForMaskedLM): dense + norm + vocabulary head on every position; "
                "pass --objective to change",
                "none": "bare model: no vocabulary head",
            }[model.resolved_objective],
        ),
        Assumption(
            "power_w_per_device",
            hw.device.tdp_w * hw.profile.power_frac,
            f"TDP {hw.device.tdp_w:g} W × power_frac {hw.profile.power_frac:g} ({hw.profile.device})",
        ),
        _memory_band_note(hw.profile),
        Assumption(
            "dp_overlap",
            hw.profile.dp_overlap if job.overlap_grad_reduce else 0.0,
            "share of gradient communication hidden behind the backward pass"
            + ("" if job.overlap_grad_reduce else " (overlap off: --no-overlap-grad-reduce)"),
        ),
    ]
    # Training precisions only (fp8/int8 are not a drop-in switch).
    trainable = {k: v for k, v in hw.device.peak_flops_per_s.items() if k in ("fp32", "tf32", "bf16", "fp16")}
    best_prec, best_peak = max(trainable.items(), key=lambda kv: kv[1], default=("", 0.0))
    used_peak = hw.device.peak_for(job.precision) or 0.0
    if used_peak and best_peak > SLOW_PRECISION_FACTOR * used_peak:
        notes.append(
            Assumption(
                "slow_precision",
                job.precision,
                f"{hw.device.id} peaks at {used_peak / 1e12:.3g} TFLOP/s in {job.precision} and "
                f"{best_peak / 1e12:.3g} in {best_prec} ({best_peak / used_peak:.0f}x faster); "
                f"try --precision {best_prec}",
            )
        )
    if job.precision == "fp8":
        te = bool(hw.profile.extra.get("fp8_quantized_saved_inputs", 0.0))
        notes.append(
            Assumption(
                "fp8",
                f"{r['quantize_s_per_step']:.3g} s per step quantizing",
                f"linear layers in fp8 at {FP8_MATMUL_EFF_SCALE:.2f}x the bf16 share of peak, attention in bf16; "
                f"every GEMM input (forward) and output gradient (backward) quantized with current scaling, "
                f"{FP8_QUANTIZE_BYTES_PER_ELEMENT:g} bytes moved per element (in memory_bound_s); saved GEMM "
                + (
                    "inputs kept in fp8 (Transformer Engine: the family's fp8_quantized_saved_inputs)"
                    if te
                    else "inputs kept in bf16 and re-quantized in backward (torchao Float8Linear style)"
                )
                + "; working weights "
                + ("in fp8 (--fp8-params)" if job.fp8_params else "in bf16 (--fp8-params for fp8)"),
            )
        )
    if model.is_moe:
        notes.append(
            Assumption(
                "moe",
                f"EP={job.ep}, capacity factor "
                + ("dropless (balanced)" if job.capacity_factor is None else f"{job.capacity_factor:g}")
                + (f", {job.moe_dispatcher} dispatcher" if job.ep > 1 else ""),
                "routed experts split over EP×TP ranks (expert TP = TP), ZeRO-sharded over DP/EP; tokens "
                "permuted into expert order and back (memory-bound, in memory_bound_s); "
                "all-to-all dispatch + combine in forward and backward, "
                + (
                    (
                        _alltoall_note(job, r)
                        + f"{r['time_ep_comm_unoverlapped_s']:.3g} s per step, "
                        + (
                            f"{r['time_ep_comm_s']:.3g} s of it exposed (DualPipe overlaps the rest with "
                            "compute)"
                            if job.schedule == "dualpipe"
                            else (
                                f"{r['time_ep_comm_s']:.3g} s of it exposed (--ep-overlap {job.ep_overlap:g}: "
                                "that share runs under compute, never more than the compute takes)"
                                if job.ep_overlap > 0
                                else "not overlapped with compute (--ep-overlap to hide a share)"
                            )
                        )
                    )
                    if job.ep > 1
                    else "none (EP = 1: experts replicated over DP)"
                ),
            )
        )
    if job.tp > hw.devices_per_node:
        notes.append(
            Assumption("tp_across_nodes", job.tp, "TP spans nodes: its all-reduces use the inter-node links")
        )
    breakdown = {
        k[len("time_") :]: r[k] for k in r if k.startswith("time_") and not k.endswith("unoverlapped_s")
    }
    return TrainEstimate(
        model=model.name,
        params=counts.total,
        active_params=counts.active,
        devices=cluster.count,
        tp=job.tp,
        pp=job.pp,
        dp=dp,
        grad_accum_steps=r["grad_accum_steps"],
        model_flops_per_step=r["model_flops_per_step"],
        hardware_flops_per_step=r["hardware_flops_per_step"],
        step_time_s=r["step_time_s"],
        tokens_per_s=r["tokens_per_s"],
        tflops_per_device=r["tflops_per_device"],
        mfu=r["mfu"],
        hfu=r["hfu"],
        memory=memory,
        fits=fits,
        fit_suggestions=[] if fits else _fit_suggestions(model, job, hw, capacity),
        steps=r["steps"],
        total_time_s=r["total_time_s"],
        device_hours=r["device_hours"],
        energy_kwh=r["energy_kwh"],
        cost_usd=cost,
        co2_kg=r["co2_kg"],
        time_breakdown_s=breakdown,
        error_band=band,
        assumptions=notes,
        config={
            "model": model.to_dict(),
            "job": job.to_dict(),
            "cluster": {
                "device": hw.device.id,
                "count": cluster.count,
                "devices_per_node": hw.devices_per_node,
                "provider": hw.provider,
                "region": hw.region,
                "pricing": hw.pricing,
            },
        },
    )
