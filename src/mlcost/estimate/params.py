"""Exact parameter counts of a :class:`~mlcost.spec.ModelSpec`.

Counts equal those of the Hugging Face implementations: ``*ForCausalLM`` for decoders (the LM head is
counted when it is not tied to the input embedding), ``BertForMaskedLM`` for BERT trained with the masked-LM
objective (its head: dense + LayerNorm + a vocabulary bias, the projection tied to the embedding) and
``BertModel`` with its pooler for the bare encoder (``objective="none"``). Norms count weight and bias
(LayerNorm) or weight only (RMSNorm). Multi-head latent attention (DeepSeek-V2/V3) counts its low-rank
query and key/value projections and the norms of the compressed latents; MoE blocks count the router,
every routed expert, the shared experts (and Qwen2-MoE's shared-expert gate); the first
``n_dense_layers`` blocks are dense.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from mlcost.spec.model import ModelSpec


@dataclass(frozen=True)
class ParamCounts:
    """Parameter counts (element counts, no unit).

    Attributes:
        total: every parameter.
        active: parameters used per token (MoE: only ``experts_top_k`` + shared experts; dense: total).
        embedding: token, position, token-type embeddings and the embedding norm.
        lm_head: untied output projection (0 when tied or without a vocabulary head).
        per_layer: the largest transformer block (an MoE block with all its experts, if any).
        per_layer_active: one block as used by one token, averaged over the blocks.
        final: final norm, pooler and the masked-LM head's transform (dense + norm) and vocabulary bias.
        matmul_per_layer_active: weights of one block that take part in matrix multiplies per token
            (excludes biases and norms), averaged over the blocks; the forward pass does 2 FLOPs per such
            weight per token.
        per_layer_dense: one dense block (equals ``per_layer`` for dense models).
        routed_experts_per_layer: the routed experts of one MoE block (what expert parallelism shards; 0
            for dense models).
        head_matmul: weights of the head that take part in matrix multiplies per token (the vocabulary
            projection, plus the masked-LM transform); 0 without a head.
    """

    total: int
    active: int
    embedding: int
    lm_head: int
    per_layer: int
    per_layer_active: float
    final: int
    matmul_per_layer_active: float
    per_layer_dense: int = 0
    routed_experts_per_layer: int = 0
    head_matmul: int = 0


def _norm_params(model: ModelSpec, width: int | None = None) -> int:
    w = model.d_model if width is None else width
    return 2 * w if model.norm == "layernorm" else w


def mlp_weights(model: ModelSpec, d_ff: int) -> int:
    """Matrix weights of one MLP (dense or one expert) with intermediate size ``d_ff``."""
    n_mats = 3 if model.mlp == "swiglu" else 2
    return n_mats * model.d_model * d_ff


def _mlp_biases(model: ModelSpec, d_ff: int) -> int:
    if not model.mlp_bias:
        return 0
    return (2 * d_ff if model.mlp == "swiglu" else d_ff) + model.d_model


def attention_weights(model: ModelSpec) -> int:
    """Q, K, V and output projection weights of one attention block (MLA: the low-rank projections)."""
    h, a, d = model.d_model, model.n_heads, model.dim_head
    if model.kv_lora_rank is not None:
        rope = model.qk_rope_head_dim
        q = h * a * d if model.q_lora_rank is None else model.q_lora_rank * (h + a * d)
        kv = h * (model.kv_lora_rank + rope) + model.kv_lora_rank * a * (d - rope + model.dim_v)
        return q + kv + a * model.dim_v * h
    q_dim, kv_dim = a * d, model.kv_heads * d
    return h * q_dim + 2 * h * kv_dim + q_dim * h


def _attention_extras(model: ModelSpec) -> int:
    """Biases and the norms inside attention (q/k norms; MLA's latent norms)."""
    q_dim, kv_dim = model.n_heads * model.dim_head, model.kv_heads * model.dim_head
    out = (q_dim + 2 * kv_dim if model.qkv_bias else 0) + (model.d_model if model.out_bias else 0)
    if model.qk_norm:
        out += 2 * _norm_params(model, model.dim_head)
    if model.kv_lora_rank is not None:
        out += _norm_params(model, model.kv_lora_rank)
        if model.q_lora_rank is not None:
            out += _norm_params(model, model.q_lora_rank)
    return out


def _head_params(model: ModelSpec) -> tuple[int, int, int]:
    """(final-side parameters, untied LM head, head matmul weights) for the model's objective."""
    h, vocab = model.d_model, model.vocab_size
    objective = model.resolved_objective
    final = _norm_params(model) if model.final_norm else 0
    if model.has_pooler:
        final += h * h + h
    if objective == "none":
        return final, 0, 0
    lm_head = 0 if model.tied_embeddings else vocab * h
    if objective == "mlm":
        # BertOnlyMLMHead: transform (dense h×h + bias, LayerNorm) and the decoder's vocabulary bias.
        final += h * h + h + _norm_params(model) + vocab
        return final, lm_head, h * h + vocab * h
    return final, lm_head, vocab * h


@functools.lru_cache(maxsize=256)
def count_params(model: ModelSpec) -> ParamCounts:
    """Exact parameter counts of ``model`` (see module docstring for what is counted)."""
    h = model.d_model
    attn = attention_weights(model) + _attention_extras(model)
    norms = model.norms_per_layer * _norm_params(model)
    dense_mlp = mlp_weights(model, model.d_ff) + _mlp_biases(model, model.d_ff)
    per_layer_dense = attn + norms + dense_mlp
    n_moe = model.n_moe_layers
    n_dense = model.n_layers - n_moe
    if model.is_moe:
        expert = mlp_weights(model, model.ff_expert) + _mlp_biases(model, model.ff_expert)
        shared_one = mlp_weights(model, model.ff_shared) + _mlp_biases(model, model.ff_shared)
        router = h * model.n_experts + (h if model.shared_expert_gate else 0)
        shared = model.n_shared_experts * shared_one
        routed = model.n_experts * expert
        moe_total = router + routed + shared
        moe_active = router + model.experts_top_k * expert + shared
        moe_matmul = (
            router
            + model.experts_top_k * mlp_weights(model, model.ff_expert)
            + model.n_shared_experts * mlp_weights(model, model.ff_shared)
        )
        per_layer_moe = attn + norms + moe_total
    else:
        routed = moe_active = moe_matmul = per_layer_moe = 0
    blocks_total = n_dense * per_layer_dense + n_moe * per_layer_moe
    blocks_active = n_dense * per_layer_dense + n_moe * (attn + norms + moe_active)
    matmul_blocks = n_dense * (attention_weights(model) + mlp_weights(model, model.d_ff)) + n_moe * (
        attention_weights(model) + moe_matmul
    )

    embedding = model.vocab_size * h
    if model.position == "learned":
        embedding += model.max_seq_len * h
    embedding += model.type_vocab_size * h
    if model.embedding_norm:
        embedding += _norm_params(model)

    final, lm_head, head_matmul = _head_params(model)
    fixed = embedding + final + lm_head
    return ParamCounts(
        total=fixed + blocks_total,
        active=fixed + blocks_active,
        embedding=embedding,
        lm_head=lm_head,
        per_layer=max(per_layer_dense if n_dense else 0, per_layer_moe),
        per_layer_active=blocks_active / model.n_layers,
        final=final,
        matmul_per_layer_active=matmul_blocks / model.n_layers,
        per_layer_dense=per_layer_dense,
        routed_experts_per_layer=routed,
        head_matmul=head_matmul,
    )
