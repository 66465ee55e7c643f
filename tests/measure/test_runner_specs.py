"""Tiny model specs shared by the measure tests (seconds to train on 2 CPU cores)."""

from __future__ import annotations

from mlcost.spec import ModelSpec

TINY_GPT2 = ModelSpec(
    name="tiny-gpt2",
    n_layers=2,
    d_model=64,
    n_heads=2,
    d_ff=256,
    vocab_size=512,
    max_seq_len=128,
    mlp="gelu",
    norm="layernorm",
    position="learned",
    tied_embeddings=True,
    qkv_bias=True,
    out_bias=True,
    mlp_bias=True,
)
TINY_LLAMA = ModelSpec(
    name="tiny-llama",
    n_layers=2,
    d_model=64,
    n_heads=4,
    n_kv_heads=2,
    d_ff=172,
    vocab_size=512,
    max_seq_len=128,
)
