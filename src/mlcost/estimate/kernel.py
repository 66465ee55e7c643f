"""The vectorised training-step model: one formula, used by ``estimate_train`` (with 0-d arrays) and by
the planner (with arrays of 10^5–10^6 candidates).

Every field of :class:`TrainInputs` is a float or a numpy array; they broadcast together. The symbols:
t = TP, p = PP, n = DP, v = virtual stages, b = micro-batch, s = sequence length, m = micro-batches per
step per pipeline = global_batch / (b · n), ep = expert parallelism (inside DP), c = capacity factor.

Pipelines: a stage holds ceil(L / (p·v))·v blocks; when p·v does not divide L the fullest stage sets the
pace (the others wait for it). MoE: routed-expert GEMMs run at the efficiency of their own size (tokens
per local expert = b·s·k·c·ep/E), padded by c; the expert-parallel all-to-all (dispatch + combine, forward
and backward; node-aware, per dispatcher: ``timing.alltoall_split``) is exposed unless overlapped
(``ep_overlap``; DualPipe also hides the PP transfers); expert gradients are reduced over DP/ep ranks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlcost.estimate.flops import (
    attention_recomputed,
    forward_flops_per_token,
    gemm_operands_per_token,
    train_step_flops,
)
from mlcost.estimate.memory import (
    MLP_ELEMENTWISE_PASSES,
    NORM_ELEMENTWISE_PASSES,
    ROPE_ELEMENTWISE_PASSES,
    fresh_pages_bytes,
    stage_params,
    train_memory,
)
from mlcost.estimate.timing import (
    allgather_time_s,
    allreduce_time_s,
    alltoall_split,
    bubble_fraction,
    hierarchical_alltoall_time_s,
    link_bandwidth,
    matmul_efficiency,
    pipeline_time_s,
)
from mlcost.spec.model import ModelSpec
from mlcost.units import J_PER_KWH, S_PER_H

Arr = Any  # float | np.ndarray

#: Bytes read and written per parameter by one fused optimizer step (grad, master weights, states, new
#: weights: each read or written once).
OPTIMIZER_TRAFFIC_BYTES: dict[str, float] = {"adamw": 28.0, "sgd": 20.0}
#: The same for PyTorch's default unfused step (``torch.optim.AdamW`` / ``SGD`` without ``fused=True``),
#: one fp32 op at a time. AdamW: weight decay mul_ (2 passes), lerp_ of the first moment (3), mul_ (2) and
#: addcmul_ (3) of the second, sqrt (2), div (2), add_ eps (2), addcdiv_ into the weights (4) = 20
#: passes × 4 bytes. SGD with momentum: mul_ (2) and add_ (3) of the buffer, add_ into the weights (3).
OPTIMIZER_TRAFFIC_BYTES_EAGER: dict[str, float] = {"adamw": 80.0, "sgd": 32.0}


@dataclass(frozen=True, kw_only=True)
class TrainInputs:
    """Inputs of :func:`train_kernel`; units in the names, codes as in :mod:`mlcost.estimate.flops`."""

    # layout and job
    tp: Arr
    pp: Arr
    dp: Arr
    micro_batch: Arr
    global_batch: Arr
    seq_len: Arr
    virtual_stages: Arr
    zero: Arr
    recompute: Arr
    sequence_parallel: Arr
    flash_attention: Arr
    overlap_grad_reduce: Arr
    fused_elementwise: Arr
    goodput: Arr
    tokens: Arr
    act_bytes: Arr
    weight_bytes: Arr
    grad_bytes: Arr
    optimizer_bytes: Arr
    optimizer_traffic_bytes: Arr
    # hardware
    peak_flops_per_s: Arr
    attention_peak_flops_per_s: Arr
    matmul_eff_scale: Arr
    # bytes moved per element to quantize a GEMM operand (fp8: context.FP8_QUANTIZE_BYTES_PER_ELEMENT; else 0)
    quantize_bytes_per_element: Arr
    mem_bw_bytes_per_s: Arr
    memory_bytes: Arr
    devices_per_node: Arr
    intra_bw_bytes_per_s: Arr
    inter_bw_bytes_per_s: Arr
    tdp_w: Arr
    # efficiency profile
    matmul_eff_max: Arr
    matmul_half_dim: Arr
    attention_eff: Arr
    mem_bw_eff: Arr
    intra_comm_eff: Arr
    inter_comm_eff: Arr
    dp_overlap: Arr
    power_frac: Arr
    framework_overhead_bytes: Arr
    step_overhead_s: Arr
    layer_overhead_s: Arr
    activation_overhead_frac: Arr
    # money and carbon
    price_usd_per_device_h: Arr
    pue: Arr
    carbon_kg_per_kwh: Arr
    # MoE and pipeline schedule (defaults keep older callers unchanged)
    ep: Arr = 1
    capacity_factor: Arr = 1.0
    schedule: Arr = 0
    # share of TP communication hidden behind GEMMs (Megatron --tp-comm-overlap / TE userbuffers); 0 = none
    tp_comm_overlap: Arr = 0.0
    # network adapters per node that ring collectives of a node-spanning DP group use (profile extra)
    ring_rails: Arr = 1.0
    # framework-family memory terms (profile extra; see mlcost.estimate.memory): share of selective
    # activations kept, backward transient of a re-materialised layer, bytes per logit at the loss
    # (NaN = the compute dtype + an fp32 copy)
    selective_activation_scale: Arr = 1.0
    recompute_transient: Arr = 1.0
    logit_bytes: Arr = float("nan")
    # share of the loss's logit buffers still held during the top layer's backward (1 = all, the PyTorch
    # accounting; 0 = freed first, XLA's buffer liveness: the peak is the larger of the two phases)
    logits_in_layer_backward: Arr = 1.0
    # share of the expert all-to-all hidden behind compute (DualPipe hides all of it and the PP transfers)
    ep_overlap: Arr = 0.0
    # token dispatcher of the all-to-all (timing.MOE_DISPATCHER_CODES: 0 alltoall, 1 deepep) and the most
    # nodes a token's experts may sit on (node-limited routing; inf = no limit)
    moe_dispatcher: Arr = 0
    moe_node_limit: Arr = np.inf
    # bytes of a Linear input the ``norms`` recompute policy caches (DeepSeek-V3 §3.3.3: FP8 with fp8 training);
    # NaN = the activation bytes
    linear_input_bytes: Arr = float("nan")
    # bytes of a weight GEMM's input kept for its weight gradient without recomputation (Transformer
    # Engine in fp8 keeps the quantized copy: memory.FP8_SAVED_INPUT_BYTES); NaN = the activation bytes
    saved_input_bytes: Arr = float("nan")
    # fp32 temporaries of the largest parameter tensor one optimizer step allocates (eager PyTorch AdamW: 2)
    optimizer_temp_tensors: Arr = 0.0
    # rate at which a CPU process page-faults fresh mmap pages in (calibrate's first-touch microbenchmark;
    # a profile extra). inf = no cost (GPUs, uncalibrated devices)
    first_touch_bytes_per_s: Arr = np.inf
    # large-copy rate that caps the optimizer's stream (a calibrated CPU's profile extra: its device bandwidth
    # is the GEMV rate, about twice a read+write copy). inf = no cap beyond the device bandwidth
    copy_bytes_per_s: Arr = np.inf

    def replace(self, **changes: Any) -> TrainInputs:
        return dataclasses.replace(self, **changes)


def elementwise_bytes_per_token_layer(
    model: ModelSpec, tp: Arr, sequence_parallel: Arr, act_bytes: Arr, fused_elementwise: Arr = True
) -> Arr:
    """Bytes moved by one forward of one block's memory-bound ops per token (norms, residual adds,
    activation function, dropout, rotary embedding), excluding the s×s softmax. Units: bytes."""
    h = model.d_model
    t = np.asarray(tp, dtype=np.float64)
    e = np.asarray(act_bytes, dtype=np.float64)
    fused = np.asarray(fused_elementwise, dtype=bool)
    # 2 norms (NORM_ELEMENTWISE_PASSES), 2 residual adds (read 2h, write h), 3 dropouts (read, write, mask).
    norm_passes = np.where(fused, *NORM_ELEMENTWISE_PASSES[model.norm])
    replicated = e * (2.0 * norm_passes * h + 6.0 * h) + (e * 2.0 * h + h) * 3.0 * float(model.dropout)
    if model.is_moe:
        ff, routed = model.ff_expert, model.experts_top_k + model.n_shared_experts
    else:
        ff, routed = model.d_ff, 1
    mlp = e * ff * np.where(fused, *MLP_ELEMENTWISE_PASSES[model.mlp]) * routed
    rope = (
        e * np.where(fused, *ROPE_ELEMENTWISE_PASSES) * (model.n_heads + model.kv_heads) * model.dim_head
        if model.position == "rope"
        else 0.0
    )
    split = mlp + rope
    return np.where(np.asarray(sequence_parallel, dtype=bool), replicated / t, replicated) + split / t


def train_kernel(model: ModelSpec, x: TrainInputs) -> dict[str, np.ndarray]:
    """Evaluate the training model for every candidate in ``x``; returns arrays keyed by metric name."""
    t = np.asarray(x.tp, dtype=np.float64)
    p = np.asarray(x.pp, dtype=np.float64)
    n = np.asarray(x.dp, dtype=np.float64)
    b = np.asarray(x.micro_batch, dtype=np.float64)
    s = np.asarray(x.seq_len, dtype=np.float64)
    v = np.asarray(x.virtual_stages, dtype=np.float64)
    rc = np.asarray(x.recompute)
    z = np.asarray(x.zero)
    e = np.asarray(x.act_bytes, dtype=np.float64)
    devices = t * p * n
    m = np.asarray(x.global_batch, dtype=np.float64) / (b * n)
    tokens_per_step = np.asarray(x.global_batch, dtype=np.float64) * s
    tokens_mb = b * s
    ep = np.asarray(x.ep, dtype=np.float64)
    cf = np.asarray(x.capacity_factor, dtype=np.float64)
    sp_on = np.asarray(x.sequence_parallel, dtype=bool)
    # MoE: each rank routes its own sequence-parallel share of the micro-batch (permutation, all-to-all)
    sp_split: Arr = np.where(sp_on, t, 1.0) if model.is_moe else 1.0
    # Uneven splits: the fullest stage (ceil) sets the pace.
    layers_stage = np.ceil(model.n_layers / (p * v)) * v
    moe_stage = np.minimum(layers_stage, model.n_moe_layers)
    # Fast paths keep dense models at their old cost (the planner scores 10^6 candidates per second).
    sched = np.asarray(x.schedule)
    bubble = 1.0 if sched.ndim == 0 and int(sched) == 0 else bubble_fraction(sched, rc, p)
    # DualPipe (DeepSeek-V3 §3.2.1): each rank holds two stages (the first and last of the worst pair)
    dual: Arr = False if sched.ndim == 0 and int(sched) != 2 else sched == 2

    # ---- FLOPs -----------------------------------------------------------------------------------
    step = train_step_flops(model, tokens_per_step, s, rc)
    tf = forward_flops_per_token(model, s)
    mm_passes = 3.0 + (rc == 2)
    attn_passes = 3.0 + attention_recomputed(rc)
    dense_tok = layers_stage * (tf.matmul_per_layer - tf.routed_per_layer) * mm_passes + 3.0 * tf.head
    if tf.up_proj_per_layer:
        dense_tok = dense_tok + layers_stage * tf.up_proj_per_layer * (rc == 4)
    mm_flops_mb = tokens_mb * dense_tok / t
    attn_flops_mb = tokens_mb * layers_stage * tf.attention_per_layer * attn_passes / t

    # ---- compute time of one micro-batch on the slowest stage (the last: blocks + LM head) --------
    peak = np.asarray(x.peak_flops_per_s, dtype=np.float64)
    g = np.minimum(model.d_model / t, tokens_mb)
    mm_eff = matmul_efficiency(g, x.matmul_eff_max, x.matmul_half_dim)
    mm_eff = mm_eff * np.asarray(x.matmul_eff_scale, dtype=np.float64)
    t_matmul = mm_flops_mb / (peak * mm_eff)
    if model.is_moe:
        # Tokens one local expert sees: b·s·k·c from each of the ep ranks, spread over E experts.
        g_e = np.minimum(model.ff_expert / t, tokens_mb * model.experts_top_k * cf * ep / model.n_experts)
        eff_e = matmul_efficiency(g_e, x.matmul_eff_max, x.matmul_half_dim)
        eff_e = eff_e * np.asarray(x.matmul_eff_scale, dtype=np.float64)
        expert_flops_mb = tokens_mb * layers_stage * tf.routed_per_layer * cf * mm_passes / t
        t_matmul = t_matmul + expert_flops_mb / (peak * eff_e)
    t_attn = attn_flops_mb / (np.asarray(x.attention_peak_flops_per_s, dtype=np.float64) * x.attention_eff)
    bw_mem = np.asarray(x.mem_bw_bytes_per_s, dtype=np.float64) * x.mem_bw_eff
    elem_tok = elementwise_bytes_per_token_layer(model, t, x.sequence_parallel, e, x.fused_elementwise)
    mask = 1.0 if model.dropout else 0.0
    softmax_tok = np.where(
        np.asarray(x.flash_attention, dtype=bool),
        0.0,
        (2.0 * e + mask * (2.0 * e + 1.0)) * model.n_heads * s / t,
    )
    loss_tok = (e + 4.0) * model.vocab_size * 2.0 / t if model.has_lm_head else 0.0
    # The matmuls and norms recompute policies re-run the element-wise ops (norms, activation) of every block.
    elem_passes = mm_passes + ((rc == 3) | (rc == 4))
    elem_bytes_mb = tokens_mb * (
        layers_stage * (elem_tok * elem_passes + softmax_tok * attn_passes) + loss_tok * 3.0
    )
    # fp8: quantizing each GEMM input (again in a recomputed forward) and each output gradient.
    q = np.asarray(x.quantize_bytes_per_element, dtype=np.float64)
    quantize_bytes_mb: Arr = 0.0
    if q.ndim or float(q):
        ops = gemm_operands_per_token(model)
        fwd_casts = 1.0 + (rc == 2)
        per_tok = (ops.dense_in + cf * ops.routed_in) * fwd_casts + ops.dense_out + cf * ops.routed_out
        quantize_bytes_mb = q * tokens_mb * layers_stage * per_tok / t
        elem_bytes_mb = elem_bytes_mb + quantize_bytes_mb
    if model.is_moe:
        # Token permutation around the experts (every precision): the dispatch gathers each token's top-k
        # copies into expert order (read and write k·h), the combine reads them and writes the weighted sum
        # (k·h + h); the backward does the same in reverse, a recomputed forward once more. Each rank
        # permutes its own (sequence-parallel) share of the micro-batch.
        k_cf = model.experts_top_k * cf
        permute_tok = e * model.d_model * (3.0 * k_cf + 1.0) * (2.0 + (rc == 2))
        elem_bytes_mb = elem_bytes_mb + tokens_mb * moe_stage * permute_tok / sp_split
    t_elem = elem_bytes_mb / bw_mem
    t_overhead = layers_stage * np.asarray(x.layer_overhead_s, dtype=np.float64)
    t_compute_mb = t_matmul + t_attn + t_elem + t_overhead

    # ---- tensor- and pipeline-parallel communication per micro-batch ----------------------------
    bw_tp = link_bandwidth(
        t,
        1,
        x.devices_per_node,
        x.intra_bw_bytes_per_s,
        x.inter_bw_bytes_per_s,
        x.intra_comm_eff,
        x.inter_comm_eff,
    )
    # Full recomputation repeats the forward's two collectives; the matmuls and norms policies re-gather the
    # inputs of the attention and MLP projections (two all-gathers: one all-reduce's worth) for their weight
    # gradients.
    n_allreduce = layers_stage * (4.0 + 2.0 * (rc == 2) + 1.0 * ((rc == 3) | (rc == 4)))
    t_tp = np.where(t > 1, n_allreduce * allreduce_time_s(e * tokens_mb * model.d_model, t, bw_tp), 0.0)
    # TP-comm overlap hides a share of it behind the GEMMs it is pipelined with, never more than they take.
    o_tp = np.asarray(x.tp_comm_overlap, dtype=np.float64)
    if o_tp.ndim or float(o_tp):
        t_tp = np.maximum((1.0 - o_tp) * t_tp, t_tp - o_tp * t_matmul)
    bw_pp = link_bandwidth(
        2,
        t,
        x.devices_per_node,
        x.intra_bw_bytes_per_s,
        x.inter_bw_bytes_per_s,
        x.intra_comm_eff,
        x.inter_comm_eff,
    )
    # Each of the v model chunks per rank sends activations forward and gradients back (interleaving
    # multiplies point-to-point traffic by v; Megatron's scatter/gather splits each message over TP).
    t_pp = np.where(p > 1, 2.0 * v * e * tokens_mb * model.d_model / t / bw_pp, 0.0)
    # Expert-parallel all-to-all: dispatch + combine in forward and backward (+ the recomputed forward).
    # Node-aware (timing.alltoall_split): the NVLink and network legs run at once, the slower one counts.
    t_a2a: Arr = 0.0
    a2a_out: dict[str, Arr] = {}
    if model.is_moe:
        split = alltoall_split(
            ep, t, x.devices_per_node, model.experts_top_k, x.moe_dispatcher, x.moe_node_limit
        )
        copy_bytes = e * tokens_mb * cf * model.d_model / sp_split
        t_intra, t_inter = hierarchical_alltoall_time_s(
            copy_bytes,
            split,
            np.asarray(x.intra_bw_bytes_per_s, dtype=np.float64) * x.intra_comm_eff,
            np.asarray(x.inter_bw_bytes_per_s, dtype=np.float64) * x.inter_comm_eff,
        )
        n_a2a = moe_stage * (4.0 + 2.0 * (rc == 2))
        on = ep > 1
        t_a2a = np.where(on, n_a2a * np.maximum(t_intra, t_inter), 0.0)
        a2a_out = {
            "ep_nodes": split.nodes,
            "ep_nodes_per_token": split.nodes_per_token,
            "ep_intra_bytes_per_step": np.where(on, n_a2a * copy_bytes * split.intra_copies, 0.0) * m,
            "ep_inter_bytes_per_step": np.where(on, n_a2a * copy_bytes * split.inter_copies, 0.0) * m,
            # per micro-batch here; × slots below, as time_ep_comm_unoverlapped_s
            "ep_intra_s_per_step": np.where(on, n_a2a * t_intra, 0.0),
            "ep_inter_s_per_step": np.where(on, n_a2a * t_inter, 0.0),
        }
    # Overlap: DualPipe pairs a forward and a backward chunk so that the expert all-to-all and the PP
    # transfers run under the other chunk's compute ("fully hidden", §3.2.1); ``ep_overlap`` hides that share
    # of the all-to-all (Megatron-Core's MoE all-to-all overlap). Never more than the compute it runs under.
    t_pp_exposed, t_a2a_exposed = t_pp, t_a2a
    if model.is_moe or not (np.ndim(dual) == 0 and not dual):
        a2a_share = np.where(dual, 1.0, np.asarray(x.ep_overlap, dtype=np.float64))
        pp_share = np.where(dual, 1.0, 0.0)
        want = a2a_share * t_a2a + pp_share * t_pp
        scale = np.where(want > 0.0, np.minimum(want, t_compute_mb) / np.maximum(want, 1e-300), 0.0)
        t_pp_exposed = t_pp - pp_share * t_pp * scale
        t_a2a_exposed = t_a2a - a2a_share * t_a2a * scale
    t_mb = t_compute_mb + t_tp + t_pp_exposed + t_a2a_exposed
    t_pipeline = pipeline_time_s(t_mb, m, p, v, bubble)
    slots = m + (p - 1) / v * bubble
    for key in ("ep_intra_s_per_step", "ep_inter_s_per_step"):
        if key in a2a_out:
            a2a_out[key] = a2a_out[key] * slots

    # ---- data-parallel gradient sync, optimizer ---------------------------------------------------
    stage = stage_params(model, t, p, ep)
    if not (np.ndim(dual) == 0 and not dual):
        stage = dataclasses.replace(
            stage,
            worst=np.where(dual, stage.first + stage.last, stage.worst),
            expert=np.where(dual, 2.0 * np.asarray(stage.expert, dtype=np.float64), stage.expert),
        )
    psi = stage.worst
    psi_e = np.asarray(stage.expert, dtype=np.float64)
    psi_d = psi - psi_e if model.is_moe else psi
    n_e = n / ep
    bw_edp: Arr = 0.0
    if model.is_moe:
        bw_edp = link_bandwidth(
            n_e,
            t * p * ep,
            x.devices_per_node,
            x.intra_bw_bytes_per_s,
            x.inter_bw_bytes_per_s,
            x.intra_comm_eff,
            x.inter_comm_eff,
        )
    rails = np.asarray(x.ring_rails, dtype=np.float64)
    bw_dp = link_bandwidth(
        n,
        t * p,
        x.devices_per_node,
        x.intra_bw_bytes_per_s,
        x.inter_bw_bytes_per_s,
        x.intra_comm_eff,
        x.inter_comm_eff,
        None if rails.ndim == 0 and float(rails) == 1.0 else rails,
    )
    gb = np.asarray(x.grad_bytes, dtype=np.float64)
    wb = np.asarray(x.weight_bytes, dtype=np.float64)

    def sync_time(params: Arr, ranks: Arr, bw: Arr) -> Arr:
        t_sync = np.where(
            z >= 3,
            2.0 * allgather_time_s(params * wb, ranks, bw) + allgather_time_s(params * gb, ranks, bw),
            allreduce_time_s(params * gb, ranks, bw),
        )
        return np.where(ranks > 1, t_sync, 0.0)

    t_dp_raw = sync_time(psi_d, n, bw_dp) + (sync_time(psi_e, n_e, bw_edp) if model.is_moe else 0.0)
    overlap = np.asarray(x.dp_overlap, dtype=np.float64) * np.asarray(x.overlap_grad_reduce, dtype=np.float64)
    # Overlap hides communication behind compute, never more than the compute it runs under: the backward
    # (≈ 2/3 of the pipeline) for gradient reduction; with ZeRO-3/FSDP also the forward, where parameter
    # all-gathers are prefetched (so small per-device work leaves more of it exposed).
    window = np.where(z >= 3, 1.0, 2.0 / 3.0) * t_pipeline
    t_dp = np.maximum((1.0 - overlap) * t_dp_raw, t_dp_raw - window * overlap)
    psi_opt = psi_d / np.where(z >= 1, n, 1.0)
    if model.is_moe:
        psi_opt = psi_opt + psi_e / np.where(z >= 1, n_e, 1.0)
    # The optimizer streams parameter-sized state arrays, larger than the caches: never faster than the
    # large-copy bandwidth, even where small cache-resident element-wise ops beat it (mem_bw_eff > 1).
    bw_opt = np.minimum(
        np.asarray(x.mem_bw_bytes_per_s, dtype=np.float64) * np.minimum(x.mem_bw_eff, 1.0),
        np.asarray(x.copy_bytes_per_s, dtype=np.float64),
    )
    t_opt = psi_opt * np.asarray(x.optimizer_traffic_bytes, dtype=np.float64) / bw_opt
    # Eager PyTorch on a CPU: tensors of >= 32 MiB come from fresh mmap pages every step (gradients,
    # optimizer temporaries, the logits chain) and each page is faulted in and zeroed by the kernel.
    touch = np.asarray(x.first_touch_bytes_per_s, dtype=np.float64)
    t_fresh: Arr = 0.0
    if touch.ndim or np.isfinite(touch):
        fresh = fresh_pages_bytes(
            model,
            micro_batch=b,
            seq_len=s,
            tp=t,
            act_bytes=e,
            optimizer_temp_tensors=x.optimizer_temp_tensors,
            n_micro=m,
        )
        eager = ~np.asarray(x.fused_elementwise, dtype=bool)
        t_fresh = np.where(eager & np.isfinite(touch), fresh / touch, 0.0)
    step_time = t_pipeline + t_dp + t_opt + t_fresh + np.asarray(x.step_overhead_s, dtype=np.float64)

    # ---- memory -----------------------------------------------------------------------------------
    mem = train_memory(
        model,
        tp=t,
        pp=p,
        dp=n,
        micro_batch=b,
        seq_len=s,
        n_micro=m,
        virtual_stages=v,
        zero=z,
        recompute=rc,
        sequence_parallel=x.sequence_parallel,
        flash_attention=x.flash_attention,
        act_bytes=e,
        weight_bytes=x.weight_bytes,
        grad_bytes=x.grad_bytes,
        optimizer_bytes=x.optimizer_bytes,
        framework_overhead_bytes=x.framework_overhead_bytes,
        activation_overhead_frac=x.activation_overhead_frac,
        selective_activation_scale=x.selective_activation_scale,
        recompute_transient=x.recompute_transient,
        logit_bytes=x.logit_bytes,
        logits_in_layer_backward=x.logits_in_layer_backward,
        linear_input_bytes=_or_default(x.linear_input_bytes, e),
        saved_input_bytes=_or_default(x.saved_input_bytes, e),
        fused_elementwise=x.fused_elementwise,
        stage=stage,
        ep=ep,
        capacity_factor=cf,
        optimizer_temp_tensors=x.optimizer_temp_tensors,
        dualpipe=dual,
    )
    mem_total = mem.total

    # ---- totals -----------------------------------------------------------------------------------
    steps = np.asarray(x.tokens, dtype=np.float64) / tokens_per_step
    total_time = steps * step_time / np.asarray(x.goodput, dtype=np.float64)
    device_hours = devices * total_time / S_PER_H
    power_w = np.asarray(x.tdp_w, dtype=np.float64) * x.power_frac
    energy_kwh = devices * power_w * total_time * x.pue / J_PER_KWH
    model_rate = step.model / step_time
    hw_rate = step.hardware / step_time
    out = {
        "devices": devices,
        "dp": n,
        "n_micro": m,
        "grad_accum_steps": m,
        "model_flops_per_step": step.model,
        "hardware_flops_per_step": step.hardware,
        "matmul_flops_per_step": step.matmul,
        "attention_flops_per_step": step.attention,
        "step_time_s": step_time,
        "tokens_per_s": tokens_per_step / step_time,
        "tflops_per_device": hw_rate / devices / 1e12,
        "mfu": model_rate / devices / peak,
        "hfu": hw_rate / devices / peak,
        "matmul_efficiency": mm_eff,
        "time_matmul_s": t_matmul * slots,
        "time_attention_s": t_attn * slots,
        "time_memory_bound_s": (t_elem + t_overhead) * slots,
        "time_tp_comm_s": t_tp * slots,
        "time_pp_comm_s": t_pp_exposed * slots,
        "time_ep_comm_s": np.asarray(t_a2a_exposed) * slots,
        "time_pp_comm_unoverlapped_s": t_pp * slots,
        "time_ep_comm_unoverlapped_s": np.asarray(t_a2a) * slots,
        "time_bubble_s": t_mb * (p - 1) / v * bubble,
        "time_dp_comm_s": t_dp,
        "time_dp_comm_unoverlapped_s": t_dp_raw,
        "time_optimizer_s": t_opt,
        "time_page_faults_s": np.asarray(t_fresh, dtype=np.float64),
        # part of time_memory_bound_s: quantizing GEMM operands to fp8 (0 in other precisions)
        "quantize_s_per_step": np.asarray(quantize_bytes_mb, dtype=np.float64) / bw_mem * slots,
        "memory_weights_bytes": mem.weights,
        "memory_gradients_bytes": mem.gradients,
        "memory_optimizer_bytes": mem.optimizer,
        "memory_activations_bytes": mem.activations,
        "memory_other_bytes": mem.other,
        "memory_not_concurrent_bytes": mem.not_concurrent,
        "memory_total_bytes": mem_total,
        "fits": mem_total <= np.asarray(x.memory_bytes, dtype=np.float64),
        "steps": steps,
        "total_time_s": total_time,
        "device_hours": device_hours,
        "energy_kwh": energy_kwh,
        "cost_usd": device_hours * x.price_usd_per_device_h,
        "co2_kg": energy_kwh * x.carbon_kg_per_kwh,
        **a2a_out,
    }
    return broadcast_all(out)


def _or_default(value: Arr, default: Arr) -> Arr:
    """``value`` where it is not NaN, else ``default`` (broadcast)."""
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 0:
        return default if np.isnan(v) else v
    return np.where(np.isnan(v), default, v)


def broadcast_all(out: dict[str, Any]) -> dict[str, np.ndarray]:
    """Give every result the common broadcast shape (scalars stay 0-d arrays; no copies)."""
    arrays = {k: np.asarray(v) for k, v in out.items()}
    if all(a.ndim == 0 for a in arrays.values()):
        return arrays
    shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
    return {k: a if a.shape == shape else np.broadcast_to(a, shape) for k, a in arrays.items()}
