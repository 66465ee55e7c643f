"""Exact parameter counts of a :class:`~mlcost.spec.ModelSpec`.

Counts equal those of the Hugging Face implementations: ``*ForCausalLM`` for decoders (the LM head is
counted when it is not tied to the input embedding) and ``BertModel`` with its pooler for BERT. Norms
count weight and bias (LayerNorm) or weight only (RMSNorm).
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
        lm_head: untied output projection (0 when tied or for encoders).
        per_layer: one transformer block (all experts for MoE).
        per_layer_active: one block as used by one token.
        final: final norm and pooler.
        matmul_per_layer_active: weights of one block that take part in matrix multiplies per token
            (excludes biases and norms); the forward pass does 2 FLOPs per such weight per token.
    """

    total: int
    active: int
    embedding: int
    lm_head: int
    per_layer: int
    per_layer_active: int
    final: int
    matmul_per_layer_active: int


def _norm_params(model: ModelSpec) -> int:
    return 2 * model.d_model if model.norm == "layernorm" else model.d_model


def mlp_weights(model: ModelSpec, d_ff: int) -> int:
    """Matrix weights of one MLP (dense or one expert) with intermediate size ``d_ff``."""
    n_mats = 3 if model.mlp == "swiglu" else 2
    return n_mats * model.d_model * d_ff


def _mlp_biases(model: ModelSpec, d_ff: int) -> int:
    if not model.mlp_bias:
        return 0
    return (2 * d_ff if model.mlp == "swiglu" else d_ff) + model.d_model


def attention_weights(model: ModelSpec) -> int:
    """Q, K, V and output projection weights of one attention block."""
    h, q_dim, kv_dim = model.d_model, model.n_heads * model.dim_head, model.kv_heads * model.dim_head
    return h * q_dim + 2 * h * kv_dim + q_dim * h


def _attention_biases(model: ModelSpec) -> int:
    q_dim, kv_dim = model.n_heads * model.dim_head, model.kv_heads * model.dim_head
    return (q_dim + 2 * kv_dim if model.qkv_bias else 0) + (model.d_model if model.out_bias else 0)


@functools.lru_cache(maxsize=256)
def count_params(model: ModelSpec) -> ParamCounts:
    """Exact parameter counts of ``model`` (see module docstring for what is counted)."""
    h = model.d_model
    attn = attention_weights(model) + _attention_biases(model)
    norms = 2 * _norm_params(model)
    if model.is_moe:
        expert = mlp_weights(model, model.ff_expert) + _mlp_biases(model, model.ff_expert)
        router = h * model.n_experts
        shared = model.n_shared_experts * expert
        mlp_total = router + model.n_experts * expert + shared
        mlp_active = router + model.experts_top_k * expert + shared
        mlp_matmul = router + (model.experts_top_k + model.n_shared_experts) * mlp_weights(
            model, model.ff_expert
        )
    else:
        mlp_total = mlp_active = mlp_weights(model, model.d_ff) + _mlp_biases(model, model.d_ff)
        mlp_matmul = mlp_weights(model, model.d_ff)
    per_layer = attn + norms + mlp_total
    per_layer_active = attn + norms + mlp_active

    embedding = model.vocab_size * h
    if model.position == "learned":
        embedding += model.max_seq_len * h
    embedding += model.type_vocab_size * h
    if model.embedding_norm:
        embedding += _norm_params(model)

    final = _norm_params(model) if model.final_norm else 0
    if model.pooler:
        final += h * h + h
    lm_head = model.vocab_size * h if (model.has_lm_head and not model.tied_embeddings) else 0

    fixed = embedding + final + lm_head
    return ParamCounts(
        total=fixed + model.n_layers * per_layer,
        active=fixed + model.n_layers * per_layer_active,
        embedding=embedding,
        lm_head=lm_head,
        per_layer=per_layer,
        per_layer_active=per_layer_active,
        final=final,
        matmul_per_layer_active=attention_weights(model) + mlp_matmul,
    )
