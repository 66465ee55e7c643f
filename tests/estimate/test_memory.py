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


def _logits_bytes(model, per_logit: float) -> float:  # type: ignore[no-untyped-def]
    return per_logit * COMMON["micro_batch"] * COMMON["seq_len"] * model.vocab_size  # type: ignore[operator]


def test_other_is_constant_plus_activation_fraction() -> None:
    """other = framework_overhead_bytes + activation_overhead_frac × the layers' activations (the
    logits-sized buffers are mapped and unmapped whole; no ZeRO-3 gather)."""
    model = get_catalog().model("gpt2")
    base = train_memory(model, framework_overhead_bytes=3e7, **COMMON)  # type: ignore[arg-type]
    assert float(base.other) == pytest.approx(3e7)
    layers = float(base.activations) - _logits_bytes(model, 4.0 + 4.0)  # logits + the loss's fp32 copy
    assert layers > 0
    frac = train_memory(
        model,
        framework_overhead_bytes=3e7,
        activation_overhead_frac=np.array([0.0, 0.5, 1.0]),
        **COMMON,  # type: ignore[arg-type]
    )
    np.testing.assert_allclose(frac.other, 3e7 + np.array([0.0, 0.5, 1.0]) * layers)
    np.testing.assert_allclose(frac.total - base.total, np.array([0.0, 0.5, 1.0]) * layers)
    assert float(base.not_concurrent) == 0.0  # fused kernels (Megatron-style buffers): all parts add up


def test_eager_peak_is_the_larger_of_backward_and_optimizer_phases() -> None:
    """Eager PyTorch (set_to_none gradients, unfused AdamW): peak = W + O + max(activations incl. the
    fp32 logits chain, gradients + 2 fp32 copies of the largest tensor) + other."""
    from mlcost.estimate.memory import largest_param_tensor

    model = get_catalog().model("gpt2")
    out = {}
    for batch in (1, 64):
        kw = {**COMMON, "micro_batch": batch}
        m = train_memory(
            model, framework_overhead_bytes=3e7, fused_elementwise=False, optimizer_temp_tensors=2.0, **kw
        )  # type: ignore[arg-type]
        temps = 2.0 * 4.0 * largest_param_tensor(model)
        assert largest_param_tensor(model) == model.vocab_size * model.d_model  # the tied embedding
        assert float(m.other) == pytest.approx(3e7 + temps)
        peak = m.weights + m.optimizer + max(float(m.activations), float(m.gradients) + temps) + 3e7
        assert float(m.total) == pytest.approx(float(peak))
        out[batch] = m
    # A small batch peaks in the optimizer step, a large one at the loss's backward.
    assert float(out[1].not_concurrent) == pytest.approx(float(out[1].activations))
    assert float(out[64].not_concurrent) == pytest.approx(float(out[64].gradients) + temps)
    # The eager fp32 logits chain: log-softmax output, its gradient and the logits' gradient (12 bytes).
    fused = train_memory(model, framework_overhead_bytes=0.0, **COMMON)  # type: ignore[arg-type]
    eager = train_memory(model, framework_overhead_bytes=0.0, fused_elementwise=False, **COMMON)  # type: ignore[arg-type]
    layers_fused = float(fused.activations) - _logits_bytes(model, 8.0)
    layers_eager = float(eager.activations) - _logits_bytes(model, 12.0)
    assert layers_eager > layers_fused > 0  # eager tanh-GELU keeps more d_ff tensors


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
