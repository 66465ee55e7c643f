"""FLOP counts per token and per training step, split by op class.

Conventions (the same as Megatron-LM's Eq. 3 in Narayanan et al. 2021 and torch ``FlopCounterMode``):

* a multiply-add is 2 FLOPs; a matrix multiply of (m×k)·(k×n) is 2·m·k·n FLOPs;
* **attention scores are counted over the full s×s matrix** (QKᵀ and attention·V: 2·s·a·(d_qk + d_v)
  FLOPs per token per layer, 4·s·a·d when the query/key and value heads have the same size d), even for causal models: kernels that skip the masked half (flash attention) do
  fewer FLOPs, which the estimator treats as a higher attention efficiency, not fewer FLOPs;
* biases, norms, activations, softmax and the loss are not counted (they are memory-bound and are
  timed from bytes moved, see :mod:`mlcost.estimate.timing`);
* the head: the vocabulary projection on every token (2·h·V), plus the masked-LM transform (2·h²) for
  BERT-style MLM (``BertForMaskedLM`` projects every position, as ``FlopCounterMode`` sees it);
* MoE: the router and the ``experts_top_k`` routed plus the shared experts per token; with a capacity
  factor c > 1 padded expert slots run too (``capacity_factor`` below);
* backward = 2 × forward; full recomputation adds one forward of every transformer block (not of the
  LM head), selective recomputation adds the forward of the attention core only (Korthikanti et al. 2022);
  ``matmuls`` (keep the weight matmuls' outputs: JAX ``checkpoint_dots_with_no_batch_dims``, MaxText's
  ``remat_policy: minimal``) re-runs the attention core (its dots have batch dimensions) and the
  element-wise ops, not the weight matmuls: the same FLOPs as selective; ``norms`` (DeepSeek-V3, arXiv
  2412.19437 §3.2.3: recompute the RMSNorms and the MLA up-projections, keep the attention output) re-runs
  the MLA up-projections' GEMMs (:attr:`TokenFlops.up_proj_per_layer`) and no attention.

*Model* FLOPs exclude recomputation (MFU); *hardware* FLOPs include it (HFU).
All functions accept numpy arrays for shapes so the planner can evaluate many candidates at once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from mlcost.estimate.params import count_params
from mlcost.spec.model import ModelSpec

#: Integer codes for recomputation used in vectorised inputs (``rc >= 1``: the attention core is re-run).
RECOMPUTE_CODES: dict[str, int] = {"none": 0, "selective": 1, "full": 2, "matmuls": 3, "norms": 4}


def attention_recomputed(recompute: ArrayLike) -> np.ndarray:
    """Whether a recompute code re-runs the attention core (selective, full, matmuls; not none or norms)."""
    rc = np.asarray(recompute)
    return (rc >= 1) & (rc <= 3)


@dataclass(frozen=True)
class TokenFlops:
    """Forward FLOPs per token (arrays broadcast with ``seq_len``). Units: FLOPs per token.

    Attributes:
        matmul_per_layer: dense GEMMs of one block (QKV, output projection, MLP/experts, router).
        attention_per_layer: attention scores and attention·V of one block (full s×s counting).
        head: the vocabulary head (0 without one).
        routed_per_layer: the part of ``matmul_per_layer`` in routed experts (averaged over blocks; 0 for
            dense models): what a capacity factor pads and expert parallelism moves.
        up_proj_per_layer: the part of ``matmul_per_layer`` in MLA's up-projections (latent to queries,
            keys and values; 0 without MLA): what the ``norms`` recompute policy re-runs.
    """

    matmul_per_layer: float
    attention_per_layer: np.ndarray
    head: float
    routed_per_layer: float = 0.0
    up_proj_per_layer: float = 0.0


def forward_flops_per_token(model: ModelSpec, seq_len: ArrayLike) -> TokenFlops:
    """Forward FLOPs per token for sequences of ``seq_len`` tokens."""
    counts = count_params(model)
    s = np.asarray(seq_len, dtype=np.float64)
    attn = 2.0 * s * model.n_heads * (model.dim_head + model.dim_v)
    head = 2.0 * counts.head_matmul
    routed = 0.0
    if model.is_moe:
        from mlcost.estimate.params import mlp_weights

        routed = 2.0 * model.experts_top_k * mlp_weights(model, model.ff_expert)
        routed *= model.n_moe_layers / model.n_layers
    up_proj = 0.0
    if model.is_mla:
        q_in = model.q_lora_rank or 0
        qk_nope = model.dim_head - (model.qk_rope_head_dim or 0)
        # q_b: q_lora_rank -> heads·(nope + rope) (absent without a query latent); kv_b: kv_lora_rank ->
        # heads·(nope + v). DeepSeek-V2/V3 modelling code.
        up_proj = 2.0 * model.n_heads * (q_in * model.dim_head + model.kv_lora_rank * (qk_nope + model.dim_v))  # type: ignore[operator]
    return TokenFlops(
        matmul_per_layer=2.0 * counts.matmul_per_layer_active,
        attention_per_layer=attn,
        head=head,
        routed_per_layer=routed,
        up_proj_per_layer=up_proj,
    )


@dataclass(frozen=True)
class GemmOperands:
    """Elements per token of the weight GEMMs' inputs and outputs in one block, averaged over the blocks:
    what fp8 training quantizes (each GEMM's input in the forward, the gradient of its output in the
    backward). The router and the vocabulary head are left out: Transformer Engine recipes keep them in
    higher precision. Fused GEMMs that share an input (QKV; SwiGLU's gate and up) count it once.

    Attributes:
        dense_in / dense_out: attention, shared-expert and dense-MLP GEMMs.
        routed_in / routed_out: the ``experts_top_k`` routed experts a token visits (before a capacity factor).
    """

    dense_in: float
    dense_out: float
    routed_in: float = 0.0
    routed_out: float = 0.0


def _mlp_operands(model: ModelSpec, d_ff: int) -> tuple[float, float]:
    """(input, output) elements per token of one MLP's GEMMs: up (and gate, fused) from d_model, down from d_ff."""
    up = 2.0 * d_ff if model.mlp == "swiglu" else float(d_ff)
    return float(model.d_model + d_ff), up + model.d_model


@functools.lru_cache(maxsize=256)
def gemm_operands_per_token(model: ModelSpec) -> GemmOperands:
    """The weight GEMMs' input and output elements per token of one block (see :class:`GemmOperands`)."""
    h, a, d, dv = model.d_model, model.n_heads, model.dim_head, model.dim_v
    if model.is_mla:
        rope = model.qk_rope_head_dim or 0
        kv_rank = model.kv_lora_rank or 0
        # q: h -> q_rank -> a·d (or h -> a·d); kv: h -> kv_rank + rope, kv_rank -> a·(d − rope + dv)
        q_in, q_out = (
            (h, a * d) if model.q_lora_rank is None else (h + model.q_lora_rank, model.q_lora_rank + a * d)
        )
        attn_in = q_in + h + kv_rank + a * dv
        attn_out = q_out + kv_rank + rope + a * (d - rope + dv) + h
    else:
        attn_in = h + a * dv
        attn_out = (a + 2 * model.kv_heads) * d + h
    d_in, d_out = _mlp_operands(model, model.d_ff)
    if not model.is_moe:
        return GemmOperands(dense_in=float(attn_in) + d_in, dense_out=float(attn_out) + d_out)
    share = model.n_moe_layers / model.n_layers
    e_in, e_out = _mlp_operands(model, model.ff_expert)
    s_in, s_out = _mlp_operands(model, model.ff_shared)
    n_sh = model.n_shared_experts
    return GemmOperands(
        dense_in=attn_in + share * n_sh * s_in + (1.0 - share) * d_in,
        dense_out=attn_out + share * n_sh * s_out + (1.0 - share) * d_out,
        routed_in=share * model.experts_top_k * e_in,
        routed_out=share * model.experts_top_k * e_out,
    )


def forward_flops(model: ModelSpec, tokens: ArrayLike, seq_len: ArrayLike) -> np.ndarray:
    """Forward FLOPs for ``tokens`` tokens in sequences of ``seq_len``. Units: FLOPs."""
    tf = forward_flops_per_token(model, seq_len)
    per_token = model.n_layers * (tf.matmul_per_layer + tf.attention_per_layer) + tf.head
    return np.asarray(tokens, dtype=np.float64) * per_token


@dataclass(frozen=True)
class StepFlops:
    """FLOPs of one optimizer step (whole job, all devices). Units: FLOPs.

    Attributes:
        model: forward + backward without recomputation (used for MFU).
        hardware: including recomputation (used for HFU and time).
        matmul: hardware FLOPs in dense GEMMs (blocks and LM head).
        attention: hardware FLOPs in attention scores/values.
    """

    model: np.ndarray
    hardware: np.ndarray
    matmul: np.ndarray
    attention: np.ndarray


def train_step_flops(
    model: ModelSpec, tokens_per_step: ArrayLike, seq_len: ArrayLike, recompute: ArrayLike
) -> StepFlops:
    """FLOPs of a training step over ``tokens_per_step`` tokens; ``recompute`` is a code from
    :data:`RECOMPUTE_CODES` (array allowed)."""
    tf = forward_flops_per_token(model, seq_len)
    tokens = np.asarray(tokens_per_step, dtype=np.float64)
    rc = np.asarray(recompute)
    layers = model.n_layers
    # passes of the forward: 1 forward + 2 (backward) + recomputation.
    mm_passes = 3.0 + (rc == 2)
    attn_passes = 3.0 + attention_recomputed(rc)
    matmul = tokens * (
        layers * (tf.matmul_per_layer * mm_passes + tf.up_proj_per_layer * (rc == 4)) + 3.0 * tf.head
    )
    attention = tokens * layers * tf.attention_per_layer * attn_passes
    model_flops = tokens * (3.0 * layers * (tf.matmul_per_layer + tf.attention_per_layer) + 3.0 * tf.head)
    return StepFlops(model=model_flops, hardware=matmul + attention, matmul=matmul, attention=attention)


def six_nd_flops(params: float, tokens: float) -> float:
    """The 6·N·D rule of thumb (Kaplan et al. 2020) for a whole training run. Units: FLOPs."""
    return 6.0 * params * tokens
