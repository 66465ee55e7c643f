"""Invariants of the estimator as hypothesis property tests."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mlcost.catalog import get_catalog
from mlcost.estimate import estimate_train, train_step_flops
from mlcost.estimate.flops import RECOMPUTE_CODES
from mlcost.spec import Cluster, TrainJob

MODEL = get_catalog().model("llama-3.1-8b")  # 32 layers, 32 heads, 8 KV heads

layouts = st.fixed_dictionaries(
    {
        "tp": st.sampled_from([1, 2, 4, 8]),
        "pp": st.sampled_from([1, 2, 4]),
        "micro_batch": st.sampled_from([1, 2, 4]),
        "seq_len": st.sampled_from([512, 2048, 4096]),
        "recompute": st.sampled_from(["none", "selective", "full", "matmuls", "norms"]),
        "flash_attention": st.booleans(),
        "sequence_parallel": st.booleans(),
        "precision": st.sampled_from(["bf16", "fp32", "fp8"]),
    }
)


def _job(lay: dict, dp: int, **kw) -> TrainJob:  # type: ignore[no-untyped-def,type-arg]
    return TrainJob(tokens=1e10, global_batch=lay["micro_batch"] * dp * 4, **lay, **kw)


@settings(max_examples=60, deadline=None)
@given(lay=layouts, dp_small=st.sampled_from([2, 4]), factor=st.sampled_from([2, 4]))
def test_more_gpus_never_raise_memory_under_zero3(lay: dict, dp_small: int, factor: int) -> None:  # type: ignore[type-arg]
    """More data-parallel devices never raise per-device memory with ZeRO-3 (same micro-batch)."""
    model_par = lay["tp"] * lay["pp"]
    small = estimate_train(
        MODEL, _job(lay, dp_small, zero=3), Cluster(device="h100-sxm", count=model_par * dp_small)
    )
    big_dp = dp_small * factor
    big = estimate_train(
        MODEL,
        TrainJob(tokens=1e10, global_batch=lay["micro_batch"] * dp_small * 4 * factor, zero=3, **lay),
        Cluster(device="h100-sxm", count=model_par * big_dp),
    )
    assert big.memory.total <= small.memory.total * (1 + 1e-12)


@settings(max_examples=60, deadline=None)
@given(seq=st.sampled_from([128, 1024, 8192]), tokens=st.sampled_from([1e6, 1e9]))
def test_recompute_never_lowers_flops(seq: int, tokens: float) -> None:
    flops = [
        float(train_step_flops(MODEL, tokens, seq, RECOMPUTE_CODES[r]).hardware)
        for r in ("none", "selective", "full", "matmuls", "norms")
    ]
    assert flops[0] <= flops[1] <= flops[2]
    assert flops[3] == flops[1]  # matmuls re-runs what selective does: the attention core
    assert flops[0] <= flops[4]  # norms re-runs norms (and MLA up-projections: none here)
    assert float(train_step_flops(MODEL, tokens, seq, 2).model) == flops[0]


@settings(max_examples=40, deadline=None)
@given(lay=layouts)
def test_recompute_never_raises_activation_memory(lay: dict) -> None:  # type: ignore[type-arg]
    mem = {}
    for rc in ("none", "selective", "full", "matmuls", "norms"):
        lay2 = {**lay, "recompute": rc}
        mem[rc] = estimate_train(
            MODEL, _job(lay2, 2), Cluster(device="h100-sxm", count=lay["tp"] * lay["pp"] * 2)
        ).memory.activations
    assert mem["full"] <= mem["selective"] <= mem["none"]
    assert mem["full"] <= mem["matmuls"] <= mem["selective"]
    assert mem["full"] <= mem["norms"] <= mem["selective"]


@settings(max_examples=40, deadline=None)
@given(lay=layouts, p1=st.floats(0.1, 10), p2=st.floats(0.1, 10))
def test_cost_monotone_in_price(lay: dict, p1: float, p2: float) -> None:  # type: ignore[type-arg]
    lo, hi = sorted((p1, p2))
    n = lay["tp"] * lay["pp"] * 2
    a = estimate_train(MODEL, _job(lay, 2), Cluster(device="h100-sxm", count=n, price_usd_per_device_h=lo))
    b = estimate_train(MODEL, _job(lay, 2), Cluster(device="h100-sxm", count=n, price_usd_per_device_h=hi))
    assert a.cost_usd is not None and b.cost_usd is not None
    assert a.cost_usd <= b.cost_usd
    assert a.total_time_s == b.total_time_s


@settings(max_examples=40, deadline=None)
@given(lay=layouts)
def test_flash_attention_never_raises_memory_or_time(lay: dict) -> None:  # type: ignore[type-arg]
    n = lay["tp"] * lay["pp"] * 2
    on = estimate_train(MODEL, _job({**lay, "flash_attention": True}, 2), Cluster(device="h100-sxm", count=n))
    off = estimate_train(
        MODEL, _job({**lay, "flash_attention": False}, 2), Cluster(device="h100-sxm", count=n)
    )
    assert on.memory.total <= off.memory.total
    assert on.step_time_s <= off.step_time_s
