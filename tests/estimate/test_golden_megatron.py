"""Golden test: Narayanan et al. 2021 (arXiv 2104.04473) Table 1 — Megatron-LM weak scaling on
A100-80GB SXM (DGX A100, 8 GPUs/node, 200 Gb/s HDR per GPU), seq 2048, vocab 51,200, fp16 mixed precision,
full recomputation, micro-batch 1, 1F1B, interleaved where PP > 1 (docs/reference/published_runs.md §A).

Reproduced through the public interface (presets megatron-gpt-*, estimate_train with the options a user
passes) with ONE set of A100 efficiency parameters (catalog/data/efficiency.toml, profile a100-80gb).
Published TF/s/GPU count recompute FLOPs, as our hardware FLOPs do. Tolerance: 10%.
"""

from __future__ import annotations

import pytest

from mlcost.catalog import get_catalog
from mlcost.estimate import estimate_train
from mlcost.spec import Cluster, TrainJob

# preset, TP, PP, GPUs, global batch, published TF/s/GPU (Table 1)
ROWS = [
    ("megatron-gpt-1.7b", 1, 1, 32, 512, 137),
    ("megatron-gpt-3.6b", 2, 1, 64, 512, 138),
    ("megatron-gpt-7.5b", 4, 1, 128, 512, 142),
    ("megatron-gpt-18.4b", 8, 1, 256, 1024, 135),
    ("megatron-gpt-39.1b", 8, 2, 512, 1536, 138),
    ("megatron-gpt-76.1b", 8, 4, 1024, 1792, 140),
    ("megatron-gpt-145.6b", 8, 8, 1536, 2304, 148),
    ("megatron-gpt-310.1b", 8, 16, 1920, 2160, 155),
    ("megatron-gpt-529.6b", 8, 35, 2520, 2520, 163),
    ("megatron-gpt-1t", 8, 64, 3072, 3072, 163),
]


def virtual_stages(layers: int, pp: int) -> int:
    """Interleaving factor used: 2 chunks per rank where the layers allow it, else 3 (529.6B: 105 layers / 35)."""
    if pp == 1:
        return 1
    return next(v for v in (2, 3, 1) if layers % (pp * v) == 0)


def table1_job(layers: int, tp: int, pp: int, batch: int) -> TrainJob:
    """The Table 1 training step of a model with ``layers`` layers (benchmarks/fit_a100_profile.py uses it too)."""
    return TrainJob(
        tokens=300e9,
        seq_len=2048,
        global_batch=batch,
        micro_batch=1,
        precision="fp16",
        tp=tp,
        pp=pp,
        virtual_stages=virtual_stages(layers, pp),
        recompute="full",
        flash_attention=False,
        overlap_grad_reduce=False,  # Megatron-LM (2021) reduced gradients after the backward pass
    )


def predict(name: str, tp: int, pp: int, gpus: int, batch: int) -> float:
    model = get_catalog().model(name)
    job = table1_job(model.n_layers, tp, pp, batch)
    return estimate_train(model, job, Cluster(device="a100-80gb", count=gpus)).tflops_per_device


@pytest.mark.parametrize(("name", "tp", "pp", "gpus", "batch", "published"), ROWS)
def test_tflops_per_gpu_within_10_percent(
    name: str, tp: int, pp: int, gpus: int, batch: int, published: float
) -> None:
    predicted = predict(name, tp, pp, gpus, batch)
    assert predicted == pytest.approx(published, rel=0.10), f"{name}: {predicted:.1f} vs {published}"


def test_paper_hardware_flops_formula() -> None:
    """Our hardware FLOPs per step equal the paper's Eq. 3: 96·B·s·L·h²·(1 + s/(6h) + V/(16·L·h))."""
    from mlcost.estimate import train_step_flops
    from mlcost.estimate.flops import RECOMPUTE_CODES

    model = get_catalog().model("megatron-gpt-18.4b")
    B, s, L, h, V = 1024, 2048, model.n_layers, model.d_model, model.vocab_size
    eq3 = 96 * B * s * L * h**2 * (1 + s / (6 * h) + V / (16 * L * h))
    ours = float(train_step_flops(model, B * s, s, RECOMPUTE_CODES["full"]).hardware)
    assert ours == pytest.approx(eq3, rel=1e-9)
