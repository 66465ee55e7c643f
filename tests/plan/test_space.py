"""The planner's search space (plan/space.py): candidate counts, pipeline degrees, the default batch, the
vectorised layout filter (against a brute-force loop and the scalar rule of estimate.validate_layout), the
precisions a device trains in, and the kernel inputs (against estimate_train, layout by layout)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mlcost.catalog import builtin_catalog
from mlcost.errors import SpecError
from mlcost.estimate import estimate_train, train_kernel, validate_layout
from mlcost.estimate.context import resolve_hardware
from mlcost.estimate.flops import RECOMPUTE_CODES
from mlcost.plan.space import (
    DeviceHardware,
    build_train_inputs,
    default_global_batch,
    device_counts,
    enumerate_layouts,
    pipeline_degrees,
    train_precisions,
)
from mlcost.spec import Cluster, ModelSpec, TrainJob

CAT = builtin_catalog()
NAMES = {code: name for name, code in RECOMPUTE_CODES.items()}


def test_device_counts_are_powers_of_two_and_halves_then_whole_nodes() -> None:
    assert device_counts(64, 8) == [1, 2, 3, 4, 6, 8, 16, 24, 32, 48, 64]
    assert device_counts(5, 8) == [1, 2, 3, 4]
    assert device_counts(1, 1) == [1]


def test_pipeline_degrees_divide_the_layers() -> None:
    assert pipeline_degrees(24) == [1, 2, 4, 8]
    assert pipeline_degrees(24, max_pp=4) == [1, 2, 4]
    assert pipeline_degrees(80) == [1, 2, 4, 8, 16]
    assert pipeline_degrees(7) == [1]


def test_default_global_batch_aims_at_4m_or_1m_tokens() -> None:
    assert default_global_batch(8e9, 4096) == 1024  # 4M tokens
    assert default_global_batch(1e9, 2048) == 512  # 1M tokens
    assert default_global_batch(1e9, 10**7) == 1  # never below one sequence


def _brute_force(model: ModelSpec, counts, tps, pps, zeros, mbs, rcs, per_node, gb):  # type: ignore[no-untyped-def]
    out = set()
    for c, t, p, z, b, rc in itertools.product(counts, tps, pps, zeros, mbs, rcs):
        if c % (t * p) or t > per_node or model.n_heads % t or model.n_layers % p:
            continue
        if model.kv_heads % t and t % model.kv_heads:
            continue
        dp = c // (t * p)
        if gb % (b * dp) or (z > 0 and dp == 1):
            continue
        out.add((c, t, p, dp, z, b, RECOMPUTE_CODES[rc]))
    return out


def test_enumerate_layouts_equals_brute_force_and_the_scalar_rule() -> None:
    model = CAT.model("llama-3.1-8b")  # 32 heads, 8 KV heads, 32 layers
    counts, tps, pps = [1, 2, 4, 6, 8, 16, 24], [1, 2, 4, 8, 16], [1, 2, 4, 8]
    zeros, mbs, rcs = [0, 1, 3], [1, 2, 4, 3], ["none", "full"]
    lay = enumerate_layouts(
        model,
        counts=counts,
        devices_per_node=8,
        global_batch=96,
        precisions=["bf16"],
        tps=tps,
        pps=pps,
        zeros=zeros,
        micro_batches=mbs,
        recomputes=rcs,
    )
    got = set(
        zip(
            *(
                a.tolist()
                for a in (lay.count, lay.tp, lay.pp, lay.dp, lay.zero, lay.micro_batch, lay.recompute)
            ),
            strict=True,
        )
    )
    assert got == _brute_force(model, counts, tps, pps, zeros, mbs, rcs, 8, 96)
    assert len(got) == len(lay) > 50
    for c, t, p, dp, z, b, rc in sorted(got):
        job = TrainJob(
            tokens=1e9, seq_len=2048, global_batch=96, micro_batch=b, tp=t, pp=p, zero=z, recompute=NAMES[rc]
        )
        assert validate_layout(model, job, c) == dp
    job = TrainJob(tokens=1e9, seq_len=2048, global_batch=96, micro_batch=4, tp=1, pp=1)
    with pytest.raises(SpecError):
        validate_layout(model, job, 16)  # 96 % (4 × 16) != 0: rejected by both
    assert (16, 1, 1, 16, 1, 4, 0) not in got


def test_enumerate_layouts_with_an_empty_axis() -> None:
    lay = enumerate_layouts(
        CAT.model("gpt2"), counts=[], devices_per_node=8, global_batch=8, precisions=["fp32"]
    )
    assert len(lay) == 0 and lay.precisions == ("fp32",)


def test_train_precisions_follow_the_device_units() -> None:
    assert train_precisions(CAT.device("h100-sxm"), ["bf16", "fp8"]) == ["bf16", "fp8"]
    assert train_precisions(CAT.device("v100-16gb"), ["bf16"]) == [
        "fp16"
    ]  # no bf16 units: fp16 + loss scaling
    assert train_precisions(CAT.device("a100-80gb"), ["fp8"]) == []
    assert train_precisions(CAT.device("cpu-epyc-2vcpu"), ["bf16", "fp32"]) == ["fp32"]
    assert train_precisions(CAT.device("v100-16gb"), ["bf16", "fp16"]) == ["fp16"]  # once


def test_kernel_inputs_equal_estimate_train_layout_by_layout() -> None:
    """No formula lives in space.py: the vectorised inputs give estimate_train's step time and memory."""
    model = CAT.model("llama-3.1-8b")
    lay = enumerate_layouts(
        model,
        counts=[8, 16],
        devices_per_node=8,
        global_batch=256,
        precisions=["bf16", "fp8"],
        micro_batches=[1, 2],
        recomputes=list(RECOMPUTE_CODES),
    )
    hw1 = resolve_hardware(Cluster(device="h100-sxm", count=8), CAT)
    hw = DeviceHardware(
        device=hw1.device,
        profile=hw1.profile,
        devices_per_node=hw1.devices_per_node,
        intra_bw_bytes_per_s=hw1.intra_bw_bytes_per_s,
        inter_bw_bytes_per_s=hw1.inter_bw_bytes_per_s,
    )
    inputs = build_train_inputs(
        model,
        lay,
        hw,
        tokens=1e10,
        seq_len=4096,
        global_batch=256,
        optimizer="adamw",
        sequence_parallel=False,
        flash_attention=True,
    )
    out = train_kernel(model, inputs)
    rng = np.random.default_rng(0)
    for i in rng.choice(len(lay), size=12, replace=False):
        job = TrainJob(
            tokens=1e10,
            seq_len=4096,
            global_batch=256,
            micro_batch=int(lay.micro_batch[i]),
            precision=lay.precisions[int(lay.precision[i])],  # type: ignore[arg-type]
            tp=int(lay.tp[i]),
            pp=int(lay.pp[i]),
            zero=int(lay.zero[i]),
            recompute=NAMES[int(lay.recompute[i])],  # type: ignore[arg-type]
            sequence_parallel=False,
            flash_attention=True,
        )
        est = estimate_train(model, job, Cluster(device="h100-sxm", count=int(lay.count[i])), catalog=CAT)
        assert float(out["step_time_s"][i]) == pytest.approx(est.step_time_s, rel=1e-9)
        assert float(out["memory_total_bytes"][i]) == pytest.approx(est.memory.total, rel=1e-9)
