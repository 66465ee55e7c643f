"""Fit ONE efficiency profile per (device, framework family) to published runs of that family, and print
the runs held out from the fit with their errors.

Usage: python benchmarks/fit_framework_profiles.py

What is fitted: ``matmul_eff_max`` and ``attention_eff`` on a grid (0.30-0.90 by 0.01, attention capped at
0.60), every other field taken from the device's base profile in efficiency.toml; the objective is the mean
squared relative error of tokens/s per device over the FIT runs of the family. The resulting rows go into
src/mlcost/catalog/data/efficiency.toml as ``device = "<device>/<family>"`` with the fit runs in their source.

Runs (shared/reference/published_runs.md, copied with their sources):
  fsdp / h100-sxm, FIT:  torchtitan benchmarks/llama3_h100_202412_torchtitan.md, Llama-3.1-8B, 8x H100,
                         FSDP, seq 8192, local batch 1, selective AC: bf16 5,762 and float8 8,532 tokens/s/GPU.
  fsdp / h100-sxm, TEST: MosaicML llm-foundry scripts/train/benchmarking/README.md, MPT-7B, 8x H100, seq
                         2048, FSDP, no activation checkpointing: 10,643 tokens/s/GPU.
Only one (device, family) pair has enough published runs here to hold any out; the Megatron family on A100
is the Narayanan et al. 2021 Table 1 fit already in efficiency.toml (tests/estimate/test_golden_megatron.py).
"""

from __future__ import annotations

import itertools

from mlcost.catalog import get_catalog
from mlcost.estimate import estimate_train
from mlcost.spec import Cluster, ModelSpec, TrainJob

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


def runs() -> list[tuple[str, str, ModelSpec, TrainJob, int, float]]:
    """(split, label, model, job, GPUs, published tokens/s/GPU)."""
    llama = get_catalog().model("llama-3.1-8b")
    tt = dict(tokens=1e9, seq_len=8192, global_batch=8, micro_batch=1, zero=3, recompute="selective")
    return [
        ("fit", "torchtitan llama-3.1-8b bf16", llama, TrainJob(**tt), 8, 5762.0),  # type: ignore[arg-type]
        ("fit", "torchtitan llama-3.1-8b fp8", llama, TrainJob(**tt, precision="fp8"), 8, 8532.0),  # type: ignore[arg-type]
        (
            "test",
            "llm-foundry mpt-7b",
            MPT_7B,
            TrainJob(tokens=1e9, seq_len=2048, global_batch=64, micro_batch=4, zero=3, recompute="none"),
            8,
            10643.0,
        ),
    ]


def predict(profile, model: ModelSpec, job: TrainJob, gpus: int) -> float:  # type: ignore[no-untyped-def]
    est = estimate_train(model, job, Cluster(device="h100-sxm", count=gpus), profile=profile)
    return est.tokens_per_s / gpus


def main() -> None:
    base = get_catalog().efficiency("h100-sxm")
    grid = [round(0.30 + 0.01 * i, 2) for i in range(61)]
    best = None
    for mm, att in itertools.product(grid, [g for g in grid if g <= 0.60]):
        prof = base.replace(matmul_eff_max=mm, attention_eff=att)
        err = [
            (predict(prof, m, j, n) / pub - 1.0) ** 2 for split, _, m, j, n, pub in runs() if split == "fit"
        ]
        loss = sum(err) / len(err)
        if best is None or loss < best[0]:
            best = (loss, mm, att)
    assert best is not None
    _, mm, att = best
    prof = base.replace(matmul_eff_max=mm, attention_eff=att)
    print(f"fsdp/h100-sxm: matmul_eff_max = {mm}, attention_eff = {att}")
    print(f"{'split':5s} {'run':32s} {'published':>10s} {'predicted':>10s} {'error':>7s}")
    for split, label, m, j, n, pub in runs():
        got = predict(prof, m, j, n)
        print(f"{split:5s} {label:32s} {pub:10.0f} {got:10.0f} {got / pub - 1:+7.1%}")


if __name__ == "__main__":
    main()
