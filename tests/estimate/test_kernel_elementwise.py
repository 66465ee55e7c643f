"""Memory-bound bytes of eager vs fused element-wise ops (mlcost.estimate.kernel)."""

from __future__ import annotations

import pytest

from mlcost.calibrate.runs import RunConfig
from mlcost.estimate.kernel import elementwise_bytes_per_token_layer


def _bytes(family: str, fused: bool) -> float:
    spec = RunConfig(family=family, n_layers=2, d_model=256, seq_len=128, micro_batch=1).spec()
    return float(elementwise_bytes_per_token_layer(spec, 1, False, 4.0, fused))


def test_eager_llama_pays_for_rmsnorm_rope_and_swiglu() -> None:
    """Hugging Face eager Llama: RMSNorm 7 passes instead of 2 (two norms), RoPE 10 instead of 2 over q and
    k, SwiGLU 5 instead of 3 over d_ff — counted from the module's ops (see the pass tables)."""
    spec = RunConfig(family="llama", n_layers=2, d_model=256, seq_len=128, micro_batch=1).spec()
    h, qk = spec.d_model, (spec.n_heads + spec.kv_heads) * spec.dim_head
    expected = 4.0 * (2 * (7 - 2) * h + (10 - 2) * qk + (5 - 3) * spec.d_ff)
    assert _bytes("llama", False) - _bytes("llama", True) == pytest.approx(expected)


def test_eager_layernorm_is_one_kernel() -> None:
    """GPT-2: F.layer_norm is one kernel even in eager mode; only the tanh-GELU differs (16 vs 2 passes)."""
    spec = RunConfig(family="gpt2", n_layers=2, d_model=256, seq_len=128, micro_batch=1).spec()
    assert _bytes("gpt2", False) - _bytes("gpt2", True) == pytest.approx(4.0 * (16 - 2) * spec.d_ff)
