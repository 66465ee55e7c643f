"""The per-iteration serving cost: hand-computed limits of the roofline and the engine overheads."""

from __future__ import annotations

import numpy as np
import pytest

from mlcost.catalog import builtin_catalog
from mlcost.errors import SpecError
from mlcost.estimate import count_params
from mlcost.estimate.serve_step import (
    bare_engine,
    iteration_time_s,
    replica_coefficients,
    step_coefficients,
    step_parts,
)

CAT = builtin_catalog()
MODEL = CAT.model("llama-3.1-8b")
H100 = CAT.device("h100-sxm")


def _coef(device: str = "h100-sxm", engine: str = "vllm", tp: int = 1, wp: str = "bf16"):  # type: ignore[no-untyped-def]
    dev = CAT.device(device)
    return replica_coefficients(
        MODEL,
        dev,
        CAT.efficiency(dev.id),
        CAT.engine_profile(engine, dev),
        tp=tp,
        weight_precision=wp,
        kv_precision="bf16",
    )


def test_batch_one_decode_streams_the_weights_plus_the_engine_overhead() -> None:
    c = _coef()
    eng = CAT.engine_profile("vllm", H100)
    weights = count_params(MODEL).total * 2.0
    kv = 2 * 32 * 8 * 128 * 2 * 1001  # Llama-3.1-8B: 32 layers, 8 KV heads of 128, bf16; 1000 cached + 1 new
    expected = (weights + kv) / (H100.mem_bw_bytes_per_s * eng.decode_mem_bw_eff)
    got = iteration_time_s(c, decode_ctx=[1000])
    assert got == pytest.approx(expected + eng.iteration_overhead_s + eng.per_seq_overhead_s, rel=1e-9)


def test_cpu_batch_one_decode_is_bandwidth_bound_not_the_training_gemm_curve() -> None:
    """The issue's CPU bug: decode at batch 1 must not run at the GEMM efficiency of M = 1 (a fraction of a
    percent of peak); it streams the weights at memory bandwidth."""
    dev = CAT.device("cpu-epyc-2vcpu")
    prof = CAT.efficiency(dev.id)
    c = _coef(dev.id, "hf")
    old_curve_at_m1 = prof.matmul_eff_max * 1 / (1 + prof.matmul_half_dim)
    assert c.gemm_flops_per_s > 100 * old_curve_at_m1 * dev.peak_for("fp32")  # type: ignore[operator]
    p = step_parts(c, decode_seqs=1.0, decode_ctx_tokens=500.0)
    assert p.memory_s > p.compute_s  # 16 GB of weights at 25.7 GB/s x 0.6 vs 16 GFLOP at ~25 GFLOP/s


def test_large_prefill_is_compute_bound_and_linear_in_tokens() -> None:
    c = _coef()
    a = step_parts(c, prefill_tokens=8192.0, prefill_seqs=1.0, prefill_pairs=8192 * 8193 / 2)
    assert a.compute_s > 5 * a.memory_s
    gemm = 8192 * c.body_flops_per_token / c.gemm_flops_per_s
    scale = CAT.engine_profile("vllm", H100).matmul_eff_scale
    assert gemm == pytest.approx(8192 * 2 * 6.98e9 / (989e12 * 0.55 * scale * 4096 / (4096 + 120)), rel=0.02)


def test_decode_time_is_flat_in_batch_until_the_ridge() -> None:
    """Bandwidth-bound decode: 8 sequences cost barely more than 1; 1024 sequences are compute bound."""
    c = _coef()
    one = iteration_time_s(c, decode_ctx=[512])
    eight = iteration_time_s(c, decode_ctx=[512] * 8)
    assert eight < 1.05 * one
    big = step_parts(c, decode_seqs=1024.0, decode_ctx_tokens=1024 * 64.0)
    assert big.compute_s > big.memory_s


def test_tensor_parallel_adds_collective_latency_per_layer() -> None:
    dev = H100
    eng = CAT.engine_profile("vllm", dev)
    c2 = replica_coefficients(
        MODEL, dev, CAT.efficiency(dev.id), eng, tp=2, weight_precision="bf16", kv_precision="bf16"
    )
    assert c2.collective_s == pytest.approx(2 * MODEL.n_layers * eng.collective_latency_s)
    assert _coef().collective_s == 0.0


def test_fp8_uses_its_own_gemm_scale() -> None:
    c8 = _coef(wp="fp8")
    c16 = _coef()
    eng = CAT.engine_profile("vllm", H100)
    ratio = c8.gemm_flops_per_s / c16.gemm_flops_per_s
    assert ratio == pytest.approx(
        H100.peak_for("fp8") / H100.peak_for("bf16") * eng.fp8_matmul_eff_scale / eng.matmul_eff_scale  # type: ignore[operator]
    )


def test_vectorised_and_scalar_paths_agree() -> None:
    prof = CAT.efficiency(H100.id)
    eng = CAT.engine_profile("vllm", H100)
    tps = np.array([1.0, 2.0, 4.0])
    cv = step_coefficients(
        MODEL,
        tp=tps,
        weight_bytes=2.0,
        kv_bytes=2.0,
        peak_flops_per_s=H100.peak_for("bf16"),  # type: ignore[arg-type]
        mem_bw_bytes_per_s=H100.mem_bw_bytes_per_s,
        devices_per_node=8,
        intra_bw_bytes_per_s=H100.intra_node_bw_bytes_per_s,
        inter_bw_bytes_per_s=H100.inter_node_bw_bytes_per_s,
        profile=prof,
        engine=eng,
    )
    vec = step_parts(
        cv,
        prefill_tokens=300.0,
        prefill_seqs=1.0,
        prefill_pairs=300 * 301 / 2,
        decode_seqs=7.0,
        decode_ctx_tokens=7000.0,
    ).time_s
    for k, tp in enumerate(tps):
        cs = replica_coefficients(
            MODEL, H100, prof, eng, tp=int(tp), weight_precision="bf16", kv_precision="bf16"
        )
        one = iteration_time_s(cs, prefill=[(300, 0)], decode_ctx=[1000] * 7)
        assert float(vec[k]) == pytest.approx(one, rel=1e-12)


def test_bare_engine_has_no_overheads() -> None:
    prof = CAT.efficiency(H100.id)
    e = bare_engine(prof)
    assert (
        e.iteration_overhead_s == 0 and e.collective_latency_s == 0 and e.decode_mem_bw_eff == prof.mem_bw_eff
    )


def test_iteration_input_checks() -> None:
    c = _coef()
    assert iteration_time_s(c) == 0.0
    with pytest.raises(SpecError):
        iteration_time_s(c, prefill=[(0, 5)])
    with pytest.raises(SpecError):
        iteration_time_s(c, decode_ctx=[-1])


def _cpu_with_curve(curve: dict[int, float]):  # type: ignore[no-untyped-def]
    from mlcost.estimate.serve_step import STREAM_EXTRA_PREFIX

    dev = CAT.device("cpu-epyc-2vcpu")
    prof = CAT.efficiency(dev.id)
    prof = prof.replace(extra={**prof.extra, **{f"{STREAM_EXTRA_PREFIX}{m}": v for m, v in curve.items()}})
    return dev, prof


def test_measured_weight_stream_curve_makes_small_batches_slower() -> None:
    """A CPU BLAS streams the weights at 2-3 rows much slower than at 1 or 8 (measured by calibrate): decode
    time is then not monotone in the batch, and a curve-less profile is unchanged."""
    small = CAT.model("gpt2")
    dev, prof = _cpu_with_curve({1: 1.0, 2: 0.5, 3: 0.4, 8: 0.9, 64: 0.25})
    eng = bare_engine(prof)
    kw = {"tp": 1, "weight_precision": "fp32", "kv_precision": "fp32"}
    c = replica_coefficients(small, dev, prof, eng, **kw)
    flat = replica_coefficients(small, dev, CAT.efficiency(dev.id), eng, **kw)
    assert c.stream_rel_by_rows[:4] == (1.0, 1.0, 0.5, 0.4) and len(c.stream_rel_by_rows) == 65
    t = {b: iteration_time_s(c, decode_ctx=[0] * b) for b in (1, 2, 3)}
    assert t[2] > 1.8 * t[1] and t[3] > t[2]
    mem = {b: step_parts(c, decode_seqs=float(b)).memory_s for b in (1, 2, 3, 5, 8)}
    assert mem[3] > mem[2] > mem[5] > mem[8] > mem[1]  # 5 rows: between 0.4 (3) and 0.9 (8)
    p1, p2 = step_parts(c, decode_seqs=2.0), step_parts(flat, decode_seqs=2.0)
    assert p1.memory_s > p2.memory_s and p1.compute_s == p2.compute_s  # only the weight stream changes
    assert step_parts(c, decode_seqs=1.0).memory_s == pytest.approx(
        step_parts(flat, decode_seqs=1.0).memory_s
    )
    # beyond the last measured row count the last point holds
    assert step_parts(c, prefill_tokens=500.0, prefill_seqs=1.0).memory_s == pytest.approx(
        step_parts(c, prefill_tokens=64.0, prefill_seqs=1.0).memory_s, rel=0.05
    )
    # the array path (the engine fit, the planner) interpolates the same table
    arr = step_parts(c, decode_seqs=np.array([1.0, 2.0, 3.0, 5.0, 8.0]))
    want = [step_parts(c, decode_seqs=b).memory_s for b in (1.0, 2.0, 3.0, 5.0, 8.0)]
    assert np.allclose(arr.memory_s, want)


def test_malformed_stream_curve_is_refused() -> None:
    from mlcost.estimate.serve_step import weight_stream_curve

    for bad in ({0: 1.0}, {2: -0.5}, {2: float("nan")}):
        _dev, prof = _cpu_with_curve(bad)
        with pytest.raises(SpecError, match="weight_stream_rel_rows"):
            weight_stream_curve(prof)
    _dev, prof = _cpu_with_curve({1: 1.0})
    prof = prof.replace(extra={**prof.extra, "weight_stream_rel_rows_x": 1.0})
    with pytest.raises(SpecError, match="rerun mlcost calibrate"):
        weight_stream_curve(prof)
