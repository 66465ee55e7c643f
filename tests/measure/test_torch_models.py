from __future__ import annotations

import pytest

from mlcost.errors import SpecError
from mlcost.measure.torch_models import (
    approx_param_count,
    family_of,
    override_spec,
    training_memory_bytes,
)
from tests.measure.test_runner_specs import TINY_GPT2, TINY_LLAMA


def test_family_mapping_without_torch():
    assert family_of(TINY_GPT2) == "gpt2"
    assert family_of(TINY_LLAMA) == "llama"
    assert family_of(TINY_LLAMA.replace(qkv_bias=True)) == "qwen2"
    assert family_of(TINY_LLAMA.replace(name="mistral-tiny")) == "mistral"
    assert family_of(TINY_LLAMA.replace(n_experts=4, experts_top_k=2)) == "mixtral"
    assert family_of(TINY_GPT2.replace(kind="encoder")) == "bert"


def test_override_spec_shrinks_and_keeps_ratios():
    big = TINY_LLAMA.replace(name="big", n_layers=32, d_model=4096, n_heads=32, n_kv_heads=8, d_ff=14336)
    small = override_spec(big, layers=2, d_model=256, vocab=1024)
    assert (small.n_layers, small.d_model, small.vocab_size) == (2, 256, 1024)
    assert small.dim_head == 128 and small.n_heads == 2
    assert small.d_ff == round(14336 * 256 / 4096)
    assert override_spec(big) is big
    with pytest.raises(SpecError):
        override_spec(TINY_GPT2, min_seq_len=4096)  # learned positions cannot grow


def test_memory_estimate_grows_with_model():
    small = training_memory_bytes(TINY_GPT2, micro_batch=1, seq_len=64)
    big = training_memory_bytes(TINY_GPT2.replace(n_layers=20), micro_batch=1, seq_len=64)
    assert 0 < small < big


@pytest.mark.parametrize("spec", [TINY_GPT2, TINY_LLAMA], ids=["gpt2", "llama"])
def test_built_model_matches_spec_and_flops_match_flop_counter(spec):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from torch.utils.flop_counter import FlopCounterMode

    from mlcost.measure.torch_models import build_model, count_model_flops, param_count

    model = build_model(spec, seed=1)
    assert model.config.vocab_size == spec.vocab_size
    assert model.config._attn_implementation == "sdpa"
    assert abs(param_count(model) - approx_param_count(spec)) / param_count(model) < 0.05
    counted = count_model_flops(model, 2, 16)
    assert all(p.grad is None for p in model.parameters())  # counting leaves no gradients
    # Reference: FlopCounterMode on the same spec built with eager attention, whose score matmuls it sees
    # (it misses the CPU SDPA kernel, which is why count_model_flops counts in eager mode).
    eager = build_model(spec, seed=1, attn_implementation="eager")
    ids = torch.randint(0, spec.vocab_size, (2, 16))
    with FlopCounterMode(display=False) as c:
        eager(input_ids=ids, labels=ids).loss.backward()
    assert counted["total_flops"] == c.get_total_flops()
    assert counted["backward_flops"] == 2 * counted["forward_flops"]


def test_eager_attention_selectable():
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from mlcost.measure.torch_models import build_model

    assert build_model(TINY_LLAMA, attn_implementation="eager").config._attn_implementation == "eager"
    with pytest.raises(SpecError):
        build_model(TINY_LLAMA, attn_implementation="magic")


def test_counted_flops_equal_estimator_for_sdpa_and_moe_models() -> None:
    """The runner counts FLOPs with eager attention and eager experts, so its count equals the estimator's
    model FLOPs exactly even when the model runs with SDPA (whose CPU kernel FlopCounterMode misses) and for
    MoE (whose grouped_mm experts it misses)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from mlcost.estimate import train_step_flops
    from mlcost.measure.torch_models import build_model, count_model_flops
    from mlcost.spec import ModelSpec

    for spec in (
        ModelSpec(
            name="moe",
            n_layers=2,
            d_model=128,
            n_heads=4,
            n_kv_heads=2,
            d_ff=256,
            vocab_size=1000,
            max_seq_len=128,
            n_experts=4,
            experts_top_k=2,
        ),
        ModelSpec(
            name="llama",
            n_layers=2,
            d_model=128,
            n_heads=4,
            n_kv_heads=2,
            d_ff=352,
            vocab_size=1000,
            max_seq_len=128,
        ),
    ):
        model = build_model(spec, attn_implementation="sdpa")
        counted = count_model_flops(model, 2, 64)["total_flops"]
        assert counted == float(train_step_flops(spec, 128, 64, 0).model)
        assert model.config._attn_implementation == "sdpa"
