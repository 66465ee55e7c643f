"""Memory per device: model states (weights, gradients, optimizer), activations, KV cache.

Formulas (all vectorised; arrays broadcast):

* **Model states** (ZeRO paper, Rajbhandari et al. 2020): with mixed precision and Adam, 2 bytes of
  working weights + 2 of gradients + 12 of fp32 master weights and two moments per parameter; plain fp32
  keeps 4 + 4 + 8. ZeRO-1 shards optimizer states over the data-parallel group, ZeRO-2 also gradients,
  ZeRO-3 (FSDP full sharding) also weights. Tensor and pipeline parallelism divide parameters first; the
  worst pipeline stage (the one with the embedding or the LM head) sets the figure.
* **Activations** (Korthikanti et al. 2022, Table 2), generalised to GQA and SwiGLU, per layer and
  micro-batch: replicated tensors (norm inputs, block inputs, dropout masks) are split over TP only with
  sequence parallelism; the rest is split over TP; the s×s score tensors (5·a·s²·b bytes at 16 bits) vanish
  with flash attention or selective recomputation; full recomputation keeps only each layer's input; the
  ``matmuls`` policy (JAX ``checkpoint_dots_with_no_batch_dims``, MaxText ``remat_policy: minimal``) keeps
  each layer's input and the weight-matmul outputs its backward needs — Q, K, V, the MLP's up (and gate)
  projections, and in a sequential block the attention projection — and re-creates the rest one layer at
  a time; the ``norms`` policy (DeepSeek-V3, arXiv 2412.19437 §3.2.3/§3.3.3) keeps the norms' inputs, MLA's
  latents, the attention output (E5M6 with fp8), the routed experts' dispatched inputs and the MLP
  activations' inputs (FP8 with fp8: ``linear_input_bytes``) and re-makes the norms, the up-projections and
  the activation's output. Without recomputation a framework that keeps fp8 GEMM inputs quantized
  (Transformer Engine: ``saved_input_bytes`` = 1) stores the norms' outputs, the MLP activation's output,
  MLA's latents and the experts' dispatched inputs in 1 byte, and the attention output twice (bf16 for
  flash attention's backward, fp8 for the projection's weight gradient). A parallel block (one norm feeding attention and MLP) keeps two d_model-sized
  tensors, not four. DualPipe (``dualpipe``) holds p+1 micro-batches in flight on a rank that also holds the
  last stage, and two stages' parameters (the kernel passes them in ``stage``). With
  1F1B the first pipeline stage holds min(p, m) micro-batches in flight (× (1 + (p−1)/(p·v)) interleaved).
  The last stage also holds the logits (compute dtype) and their fp32 copy for the loss. A re-materialised
  layer (full recomputation) holds its sequence-parallel tensors gathered.
* **Framework family terms** (efficiency-profile ``extra``, default = the formulas above):
  ``selective_activation_scale`` — share of the selective-recompute activations the family's policy keeps
  (torchtitan's op-level selective checkpointing saves every other matmul output, fewer tensors than
  Korthikanti's count), ``recompute_transient`` — what the backward of a re-materialised layer holds, in
  units of that layer's activations (1 = the activations alone; with gradients of the same size in
  flight, up to 2), both fitted to published peak memory by benchmarks/fit_framework_profiles.py;
  ``logit_bytes`` — bytes per logit held at the loss (default compute dtype + fp32 copy; torchtitan keeps
  the bf16 logits, their fp32 copy and the fp32 log-softmax: 10; MaxText computes fp32 logits and its
  loss's backward needs one fp32 [b, s, V] buffer: 4); ``logits_in_layer_backward`` — share of those
  logit buffers still held while the top layer's backward runs (default 1, both at once; XLA frees them
  first: 0, and one stage peaks at the larger of the two phases).
* **Other**: the profile's ``framework_overhead_bytes`` (runtime, allocator, communication buffers) plus
  ``activation_overhead_frac`` × activations (memory that grows with the activations' churn: freed heap
  pages a CPU process keeps, backward's transient gradients; fitted by ``mlcost calibrate``, 0 on GPUs),
  plus the ZeRO-3 gather buffers.
* **Eager PyTorch on one device** (``fused_elementwise=False``: Hugging Face modules, ``zero_grad(set_to_none=True)``,
  the default unfused ``torch.optim.AdamW``): the parts above are not all resident at once. Gradients are
  allocated during backward as the activations are freed, so the peak of a step is
  W + O + max(A + logits chain, G + optimizer temporaries): the larger of the loss/backward start (every
  layer's activations plus the fp32 logits chain: log-softmax output, its gradient and the logits'
  gradient, ``e + 8`` bytes per logit) and the optimizer step (all gradients plus the unfused AdamW's two
  fp32 temporaries of its largest parameter tensor, ``sqrt(v)`` and ``/ bias_correction``). The smaller
  of the two is reported as ``not_concurrent`` and subtracted from the total. Measured with the kernel's
  peak-RSS watermark per phase on this project's build machine (docs/calibrate.md, "Memory").
* **KV cache**: 2 · layers · kv_heads · head_dim · bytes · context · batch; when TP exceeds the number of
  KV heads the heads are replicated (as vLLM does), so each device holds ceil(kv_heads / tp).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from mlcost.estimate.params import count_params
from mlcost.spec.model import ModelSpec

#: d_ff-sized tensors one MLP keeps for backward: (fused activation kernel, eager PyTorch).
#: GELU fused: its input and output (Korthikanti et al.); eager tanh-GELU (GPT-2's gelu_new) also keeps
#: tanh(·), 0.5·x and 1 + tanh(·). SwiGLU fused: gate and up (one 2·d_ff tensor) and the product; eager
#: (Hugging Face): gate, up, silu(gate) and the product.
MLP_SAVED_TENSORS: dict[str, tuple[float, float]] = {"gelu": (2.0, 5.0), "swiglu": (3.0, 4.0)}
#: d_ff-sized outputs of the MLP's up projections (GELU: up; SwiGLU: gate and up): what the ``matmuls``
#: recompute policy keeps of the MLP (the activation's backward needs them).
MLP_UP_OUTPUTS: dict[str, float] = {"gelu": 1.0, "swiglu": 2.0}
#: Passes over d_ff-sized tensors (reads + writes) by one forward of the MLP activation: (fused, eager).
MLP_ELEMENTWISE_PASSES: dict[str, tuple[float, float]] = {"gelu": (2.0, 16.0), "swiglu": (3.0, 5.0)}
#: Passes over d_model-sized tensors by one norm's forward: (fused kernel, eager PyTorch). LayerNorm is one
#: ATen kernel even in eager mode (read + write); Hugging Face's eager RMSNorm runs pow (2), mean (1),
#: × rsqrt (2) and × weight (2).
NORM_ELEMENTWISE_PASSES: dict[str, tuple[float, float]] = {"layernorm": (2.0, 2.0), "rmsnorm": (2.0, 7.0)}
#: Passes over the q and k tensors by rotary embeddings: (fused kernel, eager). Eager (Hugging Face
#: ``apply_rotary_pos_emb``): x·cos (2), rotate_half = neg (1) + cat (2), ·sin (2), add (3).
ROPE_ELEMENTWISE_PASSES: tuple[float, float] = (2.0, 10.0)

#: Bytes per parameter of model states for (precision class, optimizer):
#: (working weights, gradients, optimizer states incl. fp32 master copy).
STATE_BYTES: dict[tuple[str, str], tuple[float, float, float]] = {
    ("mixed", "adamw"): (2.0, 2.0, 12.0),
    ("mixed", "sgd"): (2.0, 2.0, 8.0),
    ("fp32", "adamw"): (4.0, 4.0, 8.0),
    ("fp32", "sgd"): (4.0, 4.0, 4.0),
}

#: Bytes of a working weight held in fp8 (``TrainJob.fp8_params``: Megatron ``--fp8-param-gather``).
FP8_PARAM_BYTES = 1.0


def precision_class(precision: str) -> str:
    """``fp32`` for fp32/tf32 training, ``mixed`` for bf16/fp16/fp8 (fp32 master weights)."""
    return "fp32" if precision in ("fp32", "tf32") else "mixed"


def activation_bytes_per_element(precision: str) -> float:
    """Bytes of a stored activation element: 4 in fp32/tf32, 2 otherwise (fp8 training keeps bf16
    activations between layers)."""
    return 4.0 if precision in ("fp32", "tf32") else 2.0


def linear_input_bytes(precision: str) -> float:
    """Bytes of a Linear input the ``norms`` recompute policy caches for the weight gradient: 1 with fp8
    (FP8 Wgrad, DeepSeek-V3 arXiv 2412.19437 §3.3.3), else the activation bytes."""
    return 1.0 if precision == "fp8" else activation_bytes_per_element(precision)


#: Bytes per element of a weight GEMM's input Transformer Engine keeps for the weight gradient in fp8
#: training: the quantized copy (TE ``Linear``/``GroupedLinear`` save the FP8 input, transposed for Hopper's
#: wgrad GEMM, instead of the high-precision one). torchao's ``Float8Linear`` (torchtitan) keeps the bf16
#: input and re-quantizes it in backward. Which a framework family does is its profile's
#: ``extra.fp8_quantized_saved_inputs``.
FP8_SAVED_INPUT_BYTES = 1.0


def saved_input_bytes(precision: str, quantized_saved_inputs: float) -> float:
    """Bytes per element of a weight GEMM's input kept for the weight gradient without recomputation: 1 in
    fp8 where the framework keeps the quantized input (``quantized_saved_inputs``, its profile's
    ``extra.fp8_quantized_saved_inputs``), else the activation bytes."""
    if precision == "fp8" and quantized_saved_inputs:
        return FP8_SAVED_INPUT_BYTES
    return activation_bytes_per_element(precision)


#: Bytes per element of the attention output the ``norms`` policy caches with fp8 training: DeepSeek's
#: customised E5M6 format (12 bits), kept for the projection after attention and attention's backward
#: (arXiv 2412.19437 §3.3.3, "Low-Precision Activation" (1)).
ATTN_OUT_BYTES_FP8 = 1.5


@dataclass(frozen=True)
class StageParams:
    """Parameters held by one device of the worst pipeline stage, before ZeRO sharding (element counts).

    ``expert`` is the routed-expert part of ``worst`` (already divided by EP and TP): ZeRO shards it over
    the expert-data-parallel group (DP / EP) and its gradients are reduced there."""

    first: np.ndarray
    last: np.ndarray
    worst: np.ndarray
    largest_layer: float
    expert: np.ndarray | float = 0.0


def stage_params(model: ModelSpec, tp: ArrayLike, pp: ArrayLike, ep: ArrayLike = 1) -> StageParams:
    """Parameters per device on the first and last pipeline stage (embedding vs LM head/final norm).

    A stage holds ceil(layers / PP) blocks (uneven splits: the fullest stage is the worst), MoE blocks
    first when the model has dense ones (the worst case). Routed experts are split over EP × TP ranks
    (expert tensor parallelism = TP, Megatron-Core's default); everything else over TP."""
    c = count_params(model)
    tp_a = np.asarray(tp, dtype=np.float64)
    pp_a = np.asarray(pp, dtype=np.float64)
    ep_a = np.asarray(ep, dtype=np.float64)
    on_stage = np.ceil(model.n_layers / pp_a)
    expert: np.ndarray | float = 0.0
    if model.is_moe:
        moe_on_stage = np.minimum(on_stage, model.n_moe_layers)
        routed = float(c.routed_experts_per_layer)
        layers = (on_stage - moe_on_stage) * c.per_layer_dense + moe_on_stage * (c.per_layer - routed)
        expert = moe_on_stage * routed / (ep_a * tp_a)
    else:
        layers = on_stage * c.per_layer
    head = c.lm_head if c.lm_head else (model.vocab_size * model.d_model if model.has_lm_head else 0)
    single = pp_a == 1
    first = (layers + c.embedding + np.where(single, c.lm_head + c.final, 0.0)) / tp_a + expert
    # With pp > 1 the last stage holds its own LM head (a copy of the tied embedding if tied).
    last = (layers + np.where(single, c.embedding + c.lm_head, head) + c.final) / tp_a + expert
    return StageParams(
        first=first,
        last=last,
        worst=np.maximum(first, last),
        largest_layer=float(c.per_layer),
        expert=expert,
    )


def activation_bytes_per_layer(
    model: ModelSpec,
    micro_batch: ArrayLike,
    seq_len: ArrayLike,
    tp: ArrayLike,
    *,
    sequence_parallel: ArrayLike,
    flash_attention: ArrayLike,
    recompute: ArrayLike,
    act_bytes: ArrayLike,
    fused_elementwise: ArrayLike = True,
    linear_input_bytes: ArrayLike | None = None,
    saved_input_bytes: ArrayLike | None = None,
) -> np.ndarray:
    """Activation bytes stored by one layer for one micro-batch (see module docstring). Units: bytes."""
    full_layer, layer_input, _, dots, norms = _activation_parts(
        model,
        micro_batch,
        seq_len,
        tp,
        sequence_parallel,
        flash_attention,
        recompute,
        act_bytes,
        fused_elementwise,
        linear_input_bytes=act_bytes if linear_input_bytes is None else linear_input_bytes,
        saved_input_bytes=saved_input_bytes,
    )
    return _kept_per_layer(recompute, full_layer, layer_input, dots, norms)


def _kept_per_layer(
    recompute: ArrayLike, full_layer: np.ndarray, layer_input: np.ndarray, dots: np.ndarray, norms: np.ndarray
) -> np.ndarray:
    """What one layer keeps for its backward under each recompute code (module docstring). Bytes."""
    rc = np.asarray(recompute)
    kept = np.where(rc == 2, layer_input, np.where(rc == 3, dots, full_layer))
    return np.asarray(np.where(rc == 4, norms, kept))


def _activation_parts(
    model: ModelSpec,
    micro_batch: ArrayLike,
    seq_len: ArrayLike,
    tp: ArrayLike,
    sequence_parallel: ArrayLike,
    flash_attention: ArrayLike,
    recompute: ArrayLike,
    act_bytes: ArrayLike,
    fused_elementwise: ArrayLike,
    capacity_factor: ArrayLike = 1.0,
    linear_input_bytes: ArrayLike = 2.0,
    saved_input_bytes: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(all activations of one layer without full recomputation, the layer input kept with it, the same
    layer with its sequence-parallel tensors gathered: what a re-materialised layer holds, what the
    ``matmuls`` policy keeps: the layer input and the weight-matmul outputs the backward needs, what the
    ``norms`` policy keeps). Bytes.

    ``saved_input_bytes``: bytes per element of a weight GEMM's input kept for its weight gradient without
    recomputation (None = ``act_bytes``). Transformer Engine in fp8 keeps the quantized (1-byte) copy
    instead of the bf16 input (:data:`FP8_SAVED_INPUT_BYTES`); where another op's backward also needs the
    bf16 tensor (flash attention's output, the projection's input) both are kept."""
    b = np.asarray(micro_batch, dtype=np.float64)
    s = np.asarray(seq_len, dtype=np.float64)
    t = np.asarray(tp, dtype=np.float64)
    e = np.asarray(act_bytes, dtype=np.float64)
    sp = np.asarray(sequence_parallel, dtype=bool)
    flash = np.asarray(flash_attention, dtype=bool)
    rc = np.asarray(recompute)
    h, a, k, d = model.d_model, model.n_heads, model.kv_heads, model.dim_head
    sb = s * b
    mask = 1.0 if model.dropout else 0.0
    # Replicated over TP unless sequence parallel: 2 norm inputs, attention input, MLP input, 2 dropout masks.
    # A parallel block (one norm feeding attention and MLP: GPT-J, Falcon-7B, MaxText's default decoder
    # layer) keeps one norm input and one shared attention/MLP input.
    # The norms' outputs are the inputs of the QKV and first MLP GEMMs (saved_input_bytes each).
    sib = e if saved_input_bytes is None else np.asarray(saved_input_bytes, dtype=np.float64)
    replicated = sb * h * (model.norms_per_layer * (e + sib) + 2.0 * mask)
    # Split over TP: Q, K, V, attention output (projection input) and the MLP intermediates.
    lin = np.asarray(linear_input_bytes, dtype=np.float64)
    # A quantized copy of the attention output for the projection's weight gradient, beside the bf16
    # output flash attention's backward reads (none where the copy is the same tensor).
    out_copy = np.where(sib < e, sib, 0.0)
    # norms policy: the attention output, in E5M6 where Linear inputs are FP8 (ATTN_OUT_BYTES_FP8)
    out_b = np.where(lin < e, ATTN_OUT_BYTES_FP8, e)
    if model.is_mla:
        # MLA: queries and decompressed keys (a·d each), values and the attention output (a·d_v each), and
        # the compressed latents (q and kv ranks, the shared rotary key).
        dv = model.dim_v
        latents = (model.q_lora_rank or 0) + model.kv_lora_rank + model.qk_rope_head_dim  # type: ignore[operator]
        # the latents are the up-projections' GEMM inputs
        attn_split = e * sb * (2.0 * a * d + 2.0 * a * dv) + sb * (sib * latents + out_copy * a * dv)
        # matmuls policy: the q/kv projections' outputs (queries, decompressed keys and values, latents).
        dots_attn = e * sb * (2.0 * a * d + a * dv + latents)
        # norms policy: the latents (their norms and the up-projections are re-run) and the attention output.
        norms_attn = sb * (e * latents + out_b * a * dv)
    else:
        attn_split = e * sb * (2.0 * a * d + 2.0 * k * d) + sb * out_copy * a * d
        dots_attn = e * sb * (a * d + 2.0 * k * d)  # the Q, K, V projections' outputs
        # norms policy without MLA (no up-projection to re-run): Q, K, V and the attention output.
        norms_attn = sb * (e * (a * d + 2.0 * k * d) + out_b * a * d)
    # Tensors of size d_ff kept for backward (MLP_SAVED_TENSORS): fused or eager activation.
    fused = np.asarray(fused_elementwise, dtype=bool)
    saved = MLP_SAVED_TENSORS[model.mlp]
    per_ff = np.where(fused, saved[0], saved[1])
    # bytes per d_ff slot: the activation's inputs (and eager intermediates) in the activation dtype, its
    # output (the down projection's input) as a saved GEMM input
    ff_bytes = (per_ff - 1.0) * e + sib
    # matmuls policy: the up (and gate) projections' outputs, which the activation's backward needs.
    up_ff = MLP_UP_OUTPUTS[model.mlp]
    if model.is_moe:
        # Averaged over blocks: MoE blocks keep top-k (× capacity) routed and the shared experts' tensors
        # plus the dispatched token copies (top-k × h); dense blocks their d_ff MLP.
        moe_share = model.n_moe_layers / model.n_layers
        cf = np.asarray(capacity_factor, dtype=np.float64)
        # dispatched copies: the experts' first GEMM input (saved_input_bytes) and their output, which the
        # weighted combine's backward reads
        routed = model.experts_top_k * cf * (model.ff_expert * ff_bytes + h * (sib + e))
        moe_mlp = routed + model.n_shared_experts * model.ff_shared * ff_bytes
        mlp_split = sb * (moe_share * moe_mlp + (1.0 - moe_share) * model.d_ff * ff_bytes)
        moe_dots = (
            model.experts_top_k * cf * model.ff_expert + model.n_shared_experts * model.ff_shared
        ) * up_ff
        dots_mlp = e * sb * (moe_share * moe_dots + (1.0 - moe_share) * model.d_ff * up_ff)
        # norms policy: the dispatched token copies (the routed experts' Linear input) and every expert's
        # activation inputs, as cached Linear inputs (FP8 with fp8: §3.3.3 (2) and "Low-Precision
        # Communication"); the shared and dense MLPs' input is a norm output, re-made.
        moe_norms = model.experts_top_k * cf * h + moe_dots
        norms_mlp = lin * sb * (moe_share * moe_norms + (1.0 - moe_share) * model.d_ff * up_ff)
    else:
        mlp_split = sb * model.d_ff * ff_bytes
        dots_mlp = e * sb * model.d_ff * up_ff
        norms_mlp = lin * sb * model.d_ff * up_ff
    # s×s tensors: softmax output, dropout mask and dropout output (Korthikanti's 5·a·s²·b at 16 bits).
    scores = a * s * sb * (e + (mask + e) * mask)
    scores = np.where(flash | (rc >= 1), 0.0, scores)
    split = (attn_split + mlp_split + scores) / t
    full_layer = np.where(sp, replicated / t, replicated) + split
    layer_input = np.where(sp, e * sb * h / t, e * sb * h)
    # matmuls policy: a sequential block also keeps the attention output projection's result (the second
    # norm's input is re-made from it); the MLP down projection's output and, in a parallel block, the
    # attention projection's only feed residual adds, whose backward needs no values, so JAX keeps neither.
    out_proj = 0.0 if model.norms_per_layer == 1 else 1.0
    dots = layer_input * (1.0 + out_proj) + (dots_attn + dots_mlp) / t
    # norms policy: the norms' inputs (the layer input and, in a sequential block, the residual stream
    # between attention and MLP) and the attention and MLP tensors above.
    norms = layer_input * (1.0 + out_proj) + (norms_attn + norms_mlp) / t
    return full_layer, layer_input, replicated + split, dots, norms


#: fp32 temporaries of one parameter tensor that PyTorch's default (unfused, single-tensor) optimizer step
#: allocates at once: AdamW ``exp_avg_sq.sqrt()`` and its ``/ bias_correction2_sqrt`` (then ``add_(eps)``
#: in place); SGD with momentum works in place. (torch/optim/adamw.py, ``_single_tensor_adamw``.)
OPTIMIZER_TEMP_TENSORS_EAGER: dict[str, float] = {"adamw": 2.0, "sgd": 0.0}


def largest_param_tensor(model: ModelSpec) -> float:
    """Elements of the largest single parameter tensor: the embedding or LM head (vocab × d_model), an MLP
    matrix (d_model × d_ff) or a fused QKV projection (d_model × 3·d_model). Units: elements."""
    ff = max(model.d_ff, model.ff_expert if model.is_moe else 0)
    return float(max(model.vocab_size * model.d_model, model.d_model * ff, 3 * model.d_model * model.d_model))


#: Allocations at least this large are served by fresh ``mmap`` pages and unmapped when freed: glibc
#: malloc's mmap threshold grows dynamically up to DEFAULT_MMAP_THRESHOLD_MAX = 32 MiB on 64-bit Linux
#: (glibc malloc/malloc.c; mallopt(3)). Such a tensor, re-allocated every step, is page-faulted in anew
#: (the kernel zeroes every page) — the CPU cost :func:`fresh_pages_bytes` counts. Units: bytes.
MMAP_THRESHOLD_MAX_BYTES = 32 * 2**20


def _mapped(elements: ArrayLike, bytes_per_element: float) -> np.ndarray:
    """``elements`` where a tensor of that many elements is mmap-served (≥ 32 MiB), else 0."""
    n = np.asarray(elements, dtype=np.float64)
    return np.where(n * bytes_per_element >= MMAP_THRESHOLD_MAX_BYTES, n, 0.0)


def fresh_pages_bytes(
    model: ModelSpec,
    *,
    micro_batch: ArrayLike,
    seq_len: ArrayLike,
    tp: ArrayLike,
    act_bytes: ArrayLike,
    optimizer_temp_tensors: ArrayLike,
    n_micro: ArrayLike = 1.0,
) -> np.ndarray:
    """Bytes of freshly mapped pages one eager-PyTorch training step touches on a CPU (every tensor of
    ≥ 32 MiB allocated anew each step, MMAP_THRESHOLD_MAX_BYTES): the gradients of large parameter
    tensors (``zero_grad(set_to_none=True)``; a tied embedding's gradient twice: the LM head's and the
    embedding's, summed), the unfused optimizer's fp32 temporaries of them, and per micro-batch the logits
    chain (logits, log-softmax output, its gradient, the logits' gradient) and the MLP's d_ff-sized
    activations and their gradients where a micro-batch makes them that large. Units: bytes."""
    t = np.asarray(tp, dtype=np.float64)
    e = np.asarray(act_bytes, dtype=np.float64)
    h, v = model.d_model, model.vocab_size
    ff = model.ff_expert if model.is_moe else model.d_ff
    mlp_mats = 3 if model.mlp == "swiglu" else 2
    n_ff = model.n_experts * mlp_mats if model.is_moe else mlp_mats
    big = (
        _mapped(v * h / t, 4.0) * (1.0 if model.tied_embeddings or not model.has_lm_head else 2.0)
        + model.n_layers * n_ff * _mapped(h * ff / t, 4.0)
        + model.n_layers * 4 * _mapped(h * h / t, 4.0)
    )
    tied_extra = _mapped(v * h / t, 4.0) if model.tied_embeddings and model.has_lm_head else 0.0
    per_param = 4.0 * (1.0 + np.asarray(optimizer_temp_tensors, dtype=np.float64))
    tokens = np.asarray(micro_batch, dtype=np.float64) * np.asarray(seq_len, dtype=np.float64)
    logits = _mapped(tokens * v / t, 4.0) if model.has_lm_head else 0.0
    # The MLP's d_ff-sized tensors (the eager module's saved ones, MLP_SAVED_TENSORS, and as many gradients
    # in backward) once a micro-batch makes them that large (a few thousand tokens).
    ff_tensors = 2.0 * MLP_SAVED_TENSORS[model.mlp][1] * model.n_layers * _mapped(tokens * ff / t, 4.0)
    per_micro = (e + 12.0) * logits + e * ff_tensors
    return np.asarray(per_param * big + 4.0 * tied_extra + per_micro * np.asarray(n_micro, dtype=np.float64))


@dataclass(frozen=True)
class TrainMemory:
    """Memory per device of the worst pipeline stage. Units: bytes.

    ``not_concurrent`` is the part of the other fields that is never resident at the same time as the rest
    (eager PyTorch: activations and gradients; module docstring); ``total`` leaves it out."""

    weights: np.ndarray
    gradients: np.ndarray
    optimizer: np.ndarray
    activations: np.ndarray
    other: np.ndarray
    not_concurrent: np.ndarray | float = 0.0

    @property
    def total(self) -> np.ndarray:
        parts = self.weights + self.gradients + self.optimizer + self.activations + self.other
        return np.asarray(parts - self.not_concurrent)


def train_memory(
    model: ModelSpec,
    *,
    tp: ArrayLike,
    pp: ArrayLike,
    dp: ArrayLike,
    micro_batch: ArrayLike,
    seq_len: ArrayLike,
    n_micro: ArrayLike,
    virtual_stages: ArrayLike,
    zero: ArrayLike,
    recompute: ArrayLike,
    sequence_parallel: ArrayLike,
    flash_attention: ArrayLike,
    act_bytes: ArrayLike,
    weight_bytes: ArrayLike,
    grad_bytes: ArrayLike,
    optimizer_bytes: ArrayLike,
    framework_overhead_bytes: ArrayLike,
    activation_overhead_frac: ArrayLike = 0.0,
    fused_elementwise: ArrayLike = True,
    stage: StageParams | None = None,
    selective_activation_scale: ArrayLike = 1.0,
    recompute_transient: ArrayLike = 1.0,
    logit_bytes: ArrayLike | None = None,
    logits_in_layer_backward: ArrayLike = 1.0,
    linear_input_bytes: ArrayLike | None = None,
    saved_input_bytes: ArrayLike | None = None,
    ep: ArrayLike = 1,
    capacity_factor: ArrayLike = 1.0,
    optimizer_temp_tensors: ArrayLike = 0.0,
    dualpipe: ArrayLike = False,
) -> TrainMemory:
    """Per-device training memory (module docstring). ``n_micro`` is micro-batches per step per pipeline.
    With expert parallelism ``ep`` the routed experts are split over EP ranks and ZeRO shards them over
    the DP / EP ranks holding the same experts; ``capacity_factor`` pads the routed experts'
    activations. ``optimizer_temp_tensors``: fp32 temporaries of the largest parameter tensor the optimizer
    step allocates (OPTIMIZER_TEMP_TENSORS_EAGER; 0 for fused/foreach-free accounting)."""
    t = np.asarray(tp, dtype=np.float64)
    p = np.asarray(pp, dtype=np.float64)
    n = np.asarray(dp, dtype=np.float64)
    z = np.asarray(zero)
    v = np.asarray(virtual_stages, dtype=np.float64)
    m = np.asarray(n_micro, dtype=np.float64)
    rc = np.asarray(recompute)
    e = np.asarray(act_bytes, dtype=np.float64)
    ep_a = np.asarray(ep, dtype=np.float64)
    sp_params = stage if stage is not None else stage_params(model, t, p, ep_a)
    psi_e = np.asarray(sp_params.expert, dtype=np.float64)
    psi_d = sp_params.worst - psi_e if model.is_moe else sp_params.worst
    n_e = n / ep_a

    def sharded(per_param: ArrayLike, stage_from: int) -> np.ndarray:
        per = np.asarray(per_param, dtype=np.float64)
        out = psi_d * per / np.where(z >= stage_from, n, 1.0)
        if model.is_moe:
            out = out + psi_e * per / np.where(z >= stage_from, n_e, 1.0)
        return np.asarray(out)

    weights = sharded(weight_bytes, 3)
    grads = sharded(grad_bytes, 2)
    optim = sharded(optimizer_bytes, 1)

    full_one_layer, layer_input, gathered_layer, dots, norms = _activation_parts(
        model,
        micro_batch,
        seq_len,
        t,
        sequence_parallel,
        flash_attention,
        rc,
        e,
        fused_elementwise,
        capacity_factor,
        linear_input_bytes=e if linear_input_bytes is None else linear_input_bytes,
        saved_input_bytes=saved_input_bytes,
    )
    per_layer = _kept_per_layer(rc, full_one_layer, layer_input, dots, norms)
    sel = np.asarray(selective_activation_scale, dtype=np.float64)
    if sel.ndim or float(sel) != 1.0:
        per_layer = per_layer * np.where(rc == 1, sel, 1.0)
    layers_per_stage = np.ceil(model.n_layers / p)
    # micro-batches in flight on the first stage: 1F1B holds min(p, m); DualPipe p + 1 (DeepSeek-V3
    # §3.2.1 Table 2), each of one stage's layers, on ranks that hold a first and a last stage
    dual = np.asarray(dualpipe, dtype=bool)
    in_flight = np.minimum(p + dual, m) * np.where(v > 1, 1.0 + (p - 1.0) / (p * v), 1.0)
    stored = per_layer * layers_per_stage * in_flight
    # Full recomputation re-materialises one layer's activations during its backward (with sequence
    # parallelism the norm outputs are all-gathered, so the replicated tensors are whole); a family's
    # recompute_transient counts what its backward holds beside them (gradients of the same tensors).
    # The matmuls policy re-creates, one layer at a time, the tensors it did not keep.
    rt = np.asarray(recompute_transient, dtype=np.float64)
    transient = np.where(
        rc == 2, rt * gathered_layer, np.where(rc == 3, rt * np.maximum(gathered_layer - dots, 0.0), 0.0)
    )
    transient = np.where(rc == 4, rt * np.maximum(gathered_layer - norms, 0.0), transient)
    b = np.asarray(micro_batch, dtype=np.float64)
    s = np.asarray(seq_len, dtype=np.float64)
    eager = ~np.asarray(fused_elementwise, dtype=bool)
    # Bytes per logit: the logits and the loss's fp32 copy (fused loss); eager: also the log-softmax gradient
    # and the logits' gradient live at once during the loss's backward (module docstring). A framework
    # family's ``logit_bytes`` (profile extra) replaces the default.
    default_lb = e + np.where(eager, 8.0, 4.0)
    lb_given = np.asarray(np.nan if logit_bytes is None else logit_bytes, dtype=np.float64)
    lb = (
        default_lb
        if lb_given.ndim == 0 and np.isnan(lb_given)
        else np.where(np.isnan(lb_given), default_lb, lb_given)
    )
    logits = lb * s * b * model.vocab_size / t if model.has_lm_head else np.zeros_like(t)
    last_stage_act = np.where(p > 1, per_layer * layers_per_stage + logits, 0.0)
    # One stage: the loss's buffers, then the top layer's backward. A family that frees the logits before
    # the layers' backward (``logits_in_layer_backward`` 0: XLA's buffer liveness) peaks at the larger of
    # the two phases; the default (1) holds both at once.
    held = np.asarray(logits_in_layer_backward, dtype=np.float64)
    if held.ndim == 0 and float(held) == 1.0:
        one_stage = stored + transient + logits
    else:
        one_stage = stored + np.maximum(logits, transient + held * logits)
    activations = np.where(p > 1, np.maximum(stored + transient, last_stage_act), one_stage)
    # DualPipe: the rank with the first stage also holds the last, so its in-flight micro-batches and the
    # loss's logits of one of them are resident together.
    activations = np.where(dual & (p > 1), stored + transient + logits, activations)

    # ZeRO-3 gathers a full layer (and prefetches the next) in the working dtype.
    gather = np.where(
        z >= 3, 2.0 * sp_params.largest_layer * np.asarray(weight_bytes, dtype=np.float64) / t, 0.0
    )
    # The optimizer step's temporaries (unfused PyTorch: fp32 copies of the largest tensor on this device).
    opt_temp = np.asarray(optimizer_temp_tensors, dtype=np.float64) * 4.0 * largest_param_tensor(model) / t
    # Allocator retention grows with the layers' activation churn (their heap pages stay resident); the
    # logits-sized buffers are large enough to be mapped and unmapped whole.
    layer_acts = activations - np.where(p > 1, 0.0, logits)
    other = (
        np.asarray(framework_overhead_bytes, dtype=np.float64)
        + np.asarray(activation_overhead_frac, dtype=np.float64) * layer_acts
        + gather
        + opt_temp
    )
    # Eager PyTorch frees activations while it allocates gradients: the smaller of the two phases' transients
    # is not resident at the peak (module docstring).
    not_concurrent = np.where(eager, np.minimum(activations, grads + opt_temp), 0.0)
    parts = {
        "weights": weights,
        "gradients": grads,
        "optimizer": optim,
        "activations": activations,
        "other": other,
        "not_concurrent": not_concurrent,
    }
    shape = np.broadcast_shapes(*(np.shape(v) for v in parts.values()))
    return TrainMemory(
        **{k: v if np.shape(v) == shape else np.broadcast_to(v, shape) for k, v in parts.items()}
    )


def kv_cache_bytes(
    model: ModelSpec, context_len: ArrayLike, batch: ArrayLike, tp: ArrayLike, kv_bytes: ArrayLike
) -> np.ndarray:
    """KV-cache bytes per device for ``batch`` sequences of ``context_len`` tokens. Units: bytes.

    MLA (DeepSeek-V2/V3) caches the compressed latent and the shared rotary key per token and layer,
    kv_lora_rank + qk_rope_head_dim elements, replicated on every TP rank (DeepSeek-V2, arXiv 2405.04434 §2.1)."""
    if model.kv_lora_rank is not None:
        per_token = float(model.kv_lora_rank + model.qk_rope_head_dim)
        return (
            model.n_layers
            * per_token
            * np.asarray(kv_bytes, dtype=np.float64)
            * np.asarray(context_len, dtype=np.float64)
            * np.asarray(batch, dtype=np.float64)
            * np.ones_like(np.asarray(tp, dtype=np.float64))
        )
    t = np.asarray(tp, dtype=np.float64)
    heads_per_device = np.ceil(model.kv_heads / t)
    return (
        2.0
        * model.n_layers
        * heads_per_device
        * model.dim_head
        * np.asarray(kv_bytes, dtype=np.float64)
        * np.asarray(context_len, dtype=np.float64)
        * np.asarray(batch, dtype=np.float64)
    )
