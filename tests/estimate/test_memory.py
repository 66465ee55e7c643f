"""Training-memory terms (mlcost.estimate.memory.train_memory) beyond the golden tests."""

from __future__ import annotations

import numpy as np
import pytest

from mlcost.catalog import get_catalog
from mlcost.estimate.memory import train_memory

COMMON = dict(
    tp=1,
    pp=1,
    dp=1,
    micro_batch=4,
    seq_len=256,
    n_micro=1,
    virtual_stages=1,
    zero=0,
    recompute=0,
    sequence_parallel=False,
    flash_attention=True,
    act_bytes=4.0,
    weight_bytes=4.0,
    grad_bytes=4.0,
    optimizer_bytes=8.0,
)


def test_other_is_constant_plus_activation_fraction() -> None:
    """other = framework_overhead_bytes + activation_overhead_frac × activations (no ZeRO-3 gather)."""
    model = get_catalog().model("gpt2")
    base = train_memory(model, framework_overhead_bytes=3e7, **COMMON)  # type: ignore[arg-type]
    assert float(base.other) == pytest.approx(3e7)
    frac = train_memory(
        model,
        framework_overhead_bytes=3e7,
        activation_overhead_frac=np.array([0.0, 0.5, 1.0]),
        **COMMON,  # type: ignore[arg-type]
    )
    np.testing.assert_allclose(frac.other, 3e7 + np.array([0.0, 0.5, 1.0]) * float(base.activations))
    np.testing.assert_allclose(frac.total - base.total, np.array([0.0, 0.5, 1.0]) * float(base.activations))


def test_gpu_profiles_carry_no_activation_term() -> None:
    """The fitted GPU profiles keep all framework memory in the constant (their goldens assume so)."""
    cat = get_catalog()
    for dev in ("a100-80gb", "h100-sxm"):
        assert cat.efficiency(dev).activation_overhead_frac == 0.0


def test_mla_kv_cache_is_the_compressed_latent() -> None:
    """DeepSeek-V3 caches kv_lora_rank + qk_rope_head_dim = 576 elements per token and layer, not
    2 · 128 heads · 192: 61 layers × 576 × 2 bytes per token in bf16, the same on every TP rank."""
    from mlcost.catalog import get_catalog
    from mlcost.estimate.memory import kv_cache_bytes

    v3 = get_catalog().model("deepseek-v3")
    for tp in (1, 8):
        assert float(kv_cache_bytes(v3, 1, 1, tp, 2.0)) == 61 * 576 * 2
