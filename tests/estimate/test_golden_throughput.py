"""Golden tests against published throughput (docs/reference/published_runs.md §C), each within the
error band the profile claims. Model shapes are the public configs; layouts are the frameworks' defaults
(FSDP = ZeRO-3)."""

from __future__ import annotations

import pytest

from mlcost.catalog import get_catalog
from mlcost.estimate import estimate_train
from mlcost.spec import Cluster, ModelSpec, TrainJob

# MosaicML MPT-7B (llm-foundry scripts/train/benchmarking/README.md): 32 layers, d 4096, 32 heads, ALiBi,
# GELU MLP 4h, vocab 50432, seq 2048, FSDP, bf16, flash attention, no activation checkpointing.
MPT_7B = ModelSpec(
    name="mpt-7b",
    n_layers=32,
    d_model=4096,
    n_heads=32,
    d_ff=16384,
    vocab_size=50432,
    max_seq_len=2048,
    mlp="gelu",
    norm="layernorm",
    position="rope",
    tied_embeddings=True,
)


@pytest.mark.parametrize(
    ("device", "published_tokens_per_s_per_gpu"),
    [("a100-80gb", 4641), ("h100-sxm", 10643)],
)
def test_mpt7b_llm_foundry(device: str, published_tokens_per_s_per_gpu: float) -> None:
    job = TrainJob(tokens=1e9, seq_len=2048, global_batch=64, micro_batch=4, zero=3, recompute="none")
    est = estimate_train(MPT_7B, job, Cluster(device=device, count=8))
    assert est.fits
    got = est.tokens_per_s / 8
    assert got == pytest.approx(published_tokens_per_s_per_gpu, rel=est.error_band.relative), got


def test_llama31_8b_torchtitan_h100() -> None:
    """torchtitan benchmarks/llama3_h100_202412_torchtitan.md: 8x H100 (500 W), FSDP, seq 8192, local batch 1,
    selective activation checkpointing: 5,762 tokens/s/GPU."""
    model = get_catalog().model("llama-3.1-8b")
    job = TrainJob(tokens=1e9, seq_len=8192, global_batch=8, micro_batch=1, zero=3, recompute="selective")
    est = estimate_train(model, job, Cluster(device="h100-sxm", count=8))
    assert est.fits
    assert est.tokens_per_s / 8 == pytest.approx(5762, rel=est.error_band.relative)


def test_llama31_8b_torchtitan_h100_float8() -> None:
    """torchtitan (same benchmark file): + float8 linear layers (and torch.compile): 8,532 tokens/s/GPU. fp8
    runs the linear layers in fp8 at the achievable-matmul ratio of fp8 to bf16 and attention in bf16."""
    model = get_catalog().model("llama-3.1-8b")
    job = TrainJob(
        tokens=1e9,
        seq_len=8192,
        global_batch=8,
        micro_batch=1,
        zero=3,
        recompute="selective",
        precision="fp8",
    )
    est = estimate_train(model, job, Cluster(device="h100-sxm", count=8))
    assert est.tokens_per_s / 8 == pytest.approx(8532, rel=est.error_band.relative)
