"""Sanity checks against production training runs (docs/reference/published_runs.md §B).

Model-card GPU-hours include restarts, failures and evaluation, so they are upper-bound checks: each must lie
inside the range the estimator's error band claims for whole-job totals. The layout is the fastest one that
fits among TP ∈ {1,2,4,8}, ZeRO ∈ {1,3}, recompute ∈ {selective, full} (what a practitioner, or
`mlcost plan`, would pick); goodput 0.9 is the published production figure (Llama 3: "> 90% effective
training time", Dubey et al. 2024). Global batch 4M tokens (Touvron et al. 2023a/b).
"""

from __future__ import annotations

import itertools

import pytest

from mlcost.catalog import get_catalog
from mlcost.errors import SpecError
from mlcost.estimate import count_params, estimate_train, six_nd_flops, train_step_flops
from mlcost.estimate.result import TrainEstimate
from mlcost.spec import Cluster, ModelSpec, TrainJob


def fastest_fitting(model: ModelSpec, tokens: float, seq_len: int, gpus: int) -> TrainEstimate:
    best: TrainEstimate | None = None
    for tp, zero, rc in itertools.product((1, 2, 4, 8), (1, 3), ("selective", "full")):
        job = TrainJob(
            tokens=tokens,
            seq_len=seq_len,
            global_batch=2**22 // seq_len,
            micro_batch=1,
            tp=tp,
            zero=zero,
            recompute=rc,
            goodput=0.9,
        )
        try:
            est = estimate_train(model, job, Cluster(device="a100-80gb", count=gpus))
        except SpecError:
            continue
        if est.fits and (best is None or est.total_time_s < best.total_time_s):
            best = est
    assert best is not None
    return best


def llama1(name: str, layers: int, d: int, heads: int, ff: int) -> ModelSpec:
    """LLaMA-1 shapes (Touvron et al. 2023a, Table 2): RoPE, RMSNorm, SwiGLU, vocab 32k, context 2048."""
    return ModelSpec(
        name=name, n_layers=layers, d_model=d, n_heads=heads, d_ff=ff, vocab_size=32000, max_seq_len=2048
    )


CARDS = [
    # model, tokens, seq, GPUs, model-card GPU-hours (A100-80GB)
    (lambda: get_catalog().model("llama-2-7b"), 2.0e12, 4096, 512, 184_320),  # Llama 2 MODEL_CARD.md
    (lambda: get_catalog().model("llama-2-13b"), 2.0e12, 4096, 512, 368_640),
    (lambda: get_catalog().model("llama-2-70b"), 2.0e12, 4096, 2048, 1_720_320),
    (lambda: llama1("llama-1-7b", 32, 4096, 32, 11008), 1.0e12, 2048, 2048, 82_432),  # Touvron 2023a Table 15
    (lambda: llama1("llama-1-13b", 40, 5120, 40, 13824), 1.0e12, 2048, 2048, 135_168),
    (lambda: llama1("llama-1-33b", 60, 6656, 52, 17920), 1.4e12, 2048, 2048, 530_432),
    (lambda: llama1("llama-1-65b", 80, 8192, 64, 22016), 1.4e12, 2048, 2048, 1_022_362),
]


@pytest.mark.parametrize(("make", "tokens", "seq", "gpus", "card_gpu_hours"), CARDS)
def test_model_card_gpu_hours_inside_error_band(make, tokens, seq, gpus, card_gpu_hours) -> None:  # type: ignore[no-untyped-def]
    est = fastest_fitting(make(), tokens, seq, gpus)
    low, high = est.error_band.ranges["device_hours"]
    assert low <= card_gpu_hours <= high, (est.model, est.device_hours, card_gpu_hours)


def test_llama1_65b_tokens_per_gpu() -> None:
    """LLaMA-1 65B 'processes around 380 tokens/sec/GPU on 2048 A100 80GB' (Touvron et al. 2023a, §2.4)."""
    est = fastest_fitting(llama1("llama-1-65b", 80, 8192, 64, 22016), 1.4e12, 2048, 2048)
    assert est.tokens_per_s / 2048 == pytest.approx(380, rel=est.error_band.relative)


@pytest.mark.parametrize("preset", ["llama-2-70b", "llama-3.1-70b", "llama-3.1-405b", "megatron-gpt-145.6b"])
def test_six_nd_close_to_detailed_count(preset: str) -> None:
    """6·N·D is within a few percent of the detailed count for large dense models at seq 2048
    (attention and the LM head are the difference)."""
    model = get_catalog().model(preset)
    tokens = 2048 * 1024
    detailed = float(train_step_flops(model, tokens, 2048, 0).model)
    assert six_nd_flops(count_params(model).total, tokens) == pytest.approx(detailed, rel=0.05)


def test_gpt3_flops_match_paper() -> None:
    """GPT-3 175B on 300B tokens: 3.14e23 FLOPs (Brown et al. 2020, Table D.1)."""
    gpt3 = ModelSpec(
        name="gpt3",
        n_layers=96,
        d_model=12288,
        n_heads=96,
        d_ff=4 * 12288,
        vocab_size=50257,
        max_seq_len=2048,
        mlp="gelu",
        norm="layernorm",
        position="learned",
        tied_embeddings=True,
        qkv_bias=True,
        out_bias=True,
        mlp_bias=True,
    )
    assert six_nd_flops(count_params(gpt3).total, 300e9) == pytest.approx(3.14e23, rel=0.02)
