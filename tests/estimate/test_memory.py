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


def test_fresh_pages_count_tensors_at_or_above_the_mmap_threshold() -> None:
    """Eager CPU training re-allocates gradients, AdamW's 2 temporaries and the logits chain every step;
    only tensors of >= 32 MiB come from fresh mmap pages (glibc's largest mmap threshold)."""
    from mlcost.calibrate.runs import RunConfig
    from mlcost.estimate.memory import MMAP_THRESHOLD_MAX_BYTES, fresh_pages_bytes

    def fresh(vocab: int, d: int, b: int, s: int) -> float:
        spec = RunConfig(
            family="llama", n_layers=1, d_model=d, seq_len=s, micro_batch=b, vocab_size=vocab
        ).spec()
        return float(
            fresh_pages_bytes(spec, micro_batch=b, seq_len=s, tp=1, act_bytes=4.0, optimizer_temp_tensors=2.0)
        )

    below = MMAP_THRESHOLD_MAX_BYTES // 4 // 512 - 1  # vocab whose 512-wide embedding is just under 32 MiB
    assert fresh(below, 512, 1, 16) == 0.0
    above = below + 2
    # untied: embedding and LM head, each with its gradient and 2 fp32 optimizer temporaries (12 bytes)
    assert fresh(above, 512, 1, 16) == pytest.approx(2 * 12.0 * above * 512)
    # logits of 4 bytes x tokens x vocab at or over the threshold: logits + 3 fp32 buffers of the loss
    tokens = MMAP_THRESHOLD_MAX_BYTES // 4 // 1000 + 1
    assert fresh(1000, 64, 1, tokens) == pytest.approx(16.0 * tokens * 1000)


def test_page_fault_time_only_for_calibrated_eager_cpu_runs() -> None:
    import dataclasses

    from mlcost.calibrate.runs import RunConfig
    from mlcost.estimate import estimate_train
    from mlcost.estimate.context import resolve_hardware
    from mlcost.estimate.kernel import train_kernel
    from mlcost.estimate.memory import fresh_pages_bytes
    from mlcost.estimate.train import build_inputs
    from mlcost.spec import Cluster

    rc = RunConfig(family="gpt2", n_layers=1, d_model=768, seq_len=96, micro_batch=2, vocab_size=50257)
    cat = get_catalog()
    hw = resolve_hardware(Cluster(device="cpu-epyc-2vcpu"), cat, None)
    x = build_inputs(rc.spec(), rc.job(), hw, 1)
    assert float(train_kernel(rc.spec(), x)["time_page_faults_s"]) == 0.0  # no measured rate: no term
    timed = train_kernel(rc.spec(), x.replace(first_touch_bytes_per_s=2e9))
    want = fresh_pages_bytes(
        rc.spec(), micro_batch=2, seq_len=96, tp=1, act_bytes=4.0, optimizer_temp_tensors=2.0
    )
    assert float(timed["time_page_faults_s"]) == pytest.approx(float(want) / 2e9)
    fused = train_kernel(rc.spec(), x.replace(first_touch_bytes_per_s=2e9, fused_elementwise=True))
    assert float(fused["time_page_faults_s"]) == 0.0  # fused frameworks keep persistent buffers
    est = estimate_train(rc.spec(), dataclasses.replace(rc.job()), Cluster(device="cpu-epyc-2vcpu"))
    assert est.time_breakdown_s["page_faults_s"] == 0.0


# ---- the ``matmuls`` recompute policy (JAX checkpoint_dots_with_no_batch_dims, MaxText "minimal") ------


def _block(norms: int, mlp: str = "gelu"):  # type: ignore[no-untyped-def]
    from mlcost.spec import ModelSpec

    return ModelSpec(
        name="block",
        n_layers=4,
        d_model=256,
        n_heads=4,
        head_dim=64,
        n_kv_heads=2,
        d_ff=1024,
        vocab_size=4096,
        max_seq_len=256,
        mlp=mlp,  # type: ignore[arg-type]
        norm="rmsnorm",
        norms_per_layer=norms,
    )


@pytest.mark.parametrize(
    ("norms", "mlp", "out_proj", "up"), [(1, "gelu", 0, 1), (2, "gelu", 1, 1), (2, "swiglu", 1, 2)]
)
def test_matmuls_policy_keeps_the_layer_input_and_the_weight_matmul_outputs(
    norms: int, mlp: str, out_proj: int, up: int
) -> None:
    """Per layer: the input, Q, K, V, the MLP's up (and gate) outputs, and in a sequential block the
    attention projection's output — the residuals ``jax.ad_checkpoint.print_saved_residuals`` lists for a
    MaxText-like parallel block under checkpoint_dots_with_no_batch_dims (benchmarks/jax_remat_residuals.py:
    bf16 [b,s,d] carry, Q/K/V [b,s,heads,hd], hidden [b,s,mlp]; not the down or attention projections,
    which feed residual adds only)."""
    from mlcost.estimate.memory import activation_bytes_per_layer

    model = _block(norms, mlp)
    b, s, e = 2, 256, 2.0
    kw = dict(sequence_parallel=False, flash_attention=True, act_bytes=e)
    got = float(activation_bytes_per_layer(model, b, s, 1, recompute=3, **kw))  # type: ignore[arg-type]
    h, a, k, d = model.d_model, model.n_heads, model.kv_heads, model.dim_head
    want = e * b * s * ((1 + out_proj) * h + a * d + 2 * k * d + up * model.d_ff)
    assert got == pytest.approx(want)
    # ordering: full keeps least, then matmuls, then selective (Korthikanti's count), then none
    per = [float(activation_bytes_per_layer(model, b, s, 1, recompute=rc, **kw)) for rc in (2, 3, 1, 0)]  # type: ignore[arg-type]
    assert per == sorted(per) and per[0] < per[1] < per[2]


def test_matmuls_policy_flops_equal_selective_and_time_adds_elementwise_recompute() -> None:
    """The policy re-runs the attention core and the element-wise ops, not the weight matmuls."""
    from mlcost.estimate import estimate_train
    from mlcost.spec import Cluster, TrainJob

    model = get_catalog().model("llama-3.1-8b")
    job = TrainJob(tokens=1e9, seq_len=4096, global_batch=64, micro_batch=1, zero=3, recompute="selective")
    cl = Cluster(device="h100-sxm", count=8)
    sel = estimate_train(model, job, cl)
    mm = estimate_train(model, job.replace(recompute="matmuls"), cl)
    assert mm.hardware_flops_per_step == pytest.approx(sel.hardware_flops_per_step)
    assert mm.step_time_s > sel.step_time_s
    assert mm.memory.activations < sel.memory.activations


def test_logits_freed_before_the_layers_backward_peak_at_the_larger_phase() -> None:
    """logits_in_layer_backward = 0 (XLA): one stage holds the stored activations plus the larger of the
    loss's logit buffers and the re-materialised layer; 1 (default) holds both."""
    model = get_catalog().model("gpt2")
    kw = {**COMMON, "recompute": 2, "framework_overhead_bytes": 0.0}
    both = train_memory(model, **kw)  # type: ignore[arg-type]
    freed = train_memory(model, logits_in_layer_backward=0.0, **kw)  # type: ignore[arg-type]
    logits = _logits_bytes(model, 4.0 + 4.0)
    stored_and_transient = float(both.activations) - logits
    assert float(freed.activations) < float(both.activations)
    # gpt2's logits (50257 × 1024 tokens × 8 bytes) outweigh one re-materialised layer: the loss phase peaks
    layer_input = 4.0 * COMMON["micro_batch"] * COMMON["seq_len"] * model.d_model  # type: ignore[operator]
    assert float(freed.activations) == pytest.approx(model.n_layers * layer_input + logits)
    assert stored_and_transient > model.n_layers * layer_input
