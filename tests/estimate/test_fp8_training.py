"""fp8 training terms: Transformer Engine's 1-byte saved GEMM inputs (memory), fp8 working weights
(``fp8_params``), the quantize traffic of every GEMM operand and the MoE token permutation (time)."""

from __future__ import annotations

import dataclasses

import pytest

from mlcost.catalog import get_catalog
from mlcost.errors import SpecError
from mlcost.estimate import estimate_train
from mlcost.estimate.context import FP8_QUANTIZE_BYTES_PER_ELEMENT
from mlcost.estimate.flops import gemm_operands_per_token
from mlcost.estimate.memory import activation_bytes_per_layer
from mlcost.spec import Cluster, TrainJob


def test_gemm_operands_of_a_dense_swiglu_block() -> None:
    """Llama-2-7B (h 4096, 32 heads of 128, no GQA, SwiGLU d_ff 11008): QKV 4096 -> 12288, o 4096 -> 4096,
    gate+up 4096 -> 22016, down 11008 -> 4096; the fused inputs count once."""
    ops = gemm_operands_per_token(get_catalog().model("llama-2-7b"))
    assert ops.dense_in == 4096 + 4096 + 4096 + 11008
    assert ops.dense_out == 12288 + 4096 + 22016 + 4096
    assert ops.routed_in == ops.routed_out == 0.0


def test_gemm_operands_of_routed_experts_scale_with_top_k() -> None:
    """Qwen3-30B-A3B: every block is MoE, 8 routed experts of 768 per token, no shared expert."""
    model = get_catalog().model("qwen3-30b-a3b")
    ops = gemm_operands_per_token(model)
    h, ff = model.d_model, model.ff_expert
    assert ops.routed_in == 8 * (h + ff)
    assert ops.routed_out == 8 * (2 * ff + h)
    one = gemm_operands_per_token(model.replace(experts_top_k=1))
    assert ops.routed_in == pytest.approx(8 * one.routed_in)
    assert ops.dense_in == one.dense_in  # attention only


def test_te_fp8_keeps_quantized_gemm_inputs() -> None:
    """No recomputation, flash attention, no SP: bf16 keeps the 2 norm inputs and outputs (4·h), Q, K, V and
    the attention output, and the SwiGLU's gate+up output and product (3·d_ff), all in 2 bytes. Transformer
    Engine in fp8 keeps the GEMM inputs (norm outputs, SwiGLU product) in 1 byte and a 1-byte copy of the
    attention output beside flash attention's bf16 one."""
    model = get_catalog().model("llama-2-7b")
    b, s = 1, 4096
    h, a, k, d, ff = model.d_model, model.n_heads, model.kv_heads, model.dim_head, model.d_ff
    kw = dict(sequence_parallel=False, flash_attention=True, recompute=0, act_bytes=2.0)
    bf16 = float(activation_bytes_per_layer(model, b, s, 1, **kw))  # type: ignore[arg-type]
    te = float(activation_bytes_per_layer(model, b, s, 1, saved_input_bytes=1.0, **kw))  # type: ignore[arg-type]
    sb = b * s
    assert bf16 == pytest.approx(sb * (8 * h + 2 * (2 * a * d + 2 * k * d) + 6 * ff))
    assert te == pytest.approx(sb * (2 * 2 * h + 2 * h + 2 * (2 * a * d + 2 * k * d) + a * d + 5 * ff))
    assert te < bf16


def _q235_fp8(**changes: object):  # type: ignore[no-untyped-def]
    from tests.estimate.moe_published_runs import load

    run = {r.id: r for r in load()}["mb2511-q235-h100-fp8"]
    return run, dataclasses.replace(run.job, **changes)  # type: ignore[arg-type]


def test_quantized_saved_inputs_are_a_framework_family_term() -> None:
    """The nemo family (Transformer Engine) keeps 1-byte inputs; the plain device profile (torchao-style:
    bf16 inputs re-quantized in backward) does not: same job, more activation memory."""
    run, job = _q235_fp8()
    nemo = estimate_train(run.model, job, run.cluster, framework="nemo")
    plain = estimate_train(run.model, job, run.cluster)
    assert get_catalog().efficiency("h100-sxm/nemo").extra["fp8_quantized_saved_inputs"] == 1.0
    assert nemo.memory.activations < 0.9 * plain.memory.activations
    assert nemo.fits


def test_fp8_params_hold_one_byte_weights() -> None:
    run, job = _q235_fp8(fp8_params=False)
    with_fp8 = estimate_train(
        run.model, dataclasses.replace(job, fp8_params=True), run.cluster, framework="nemo"
    )
    without = estimate_train(run.model, job, run.cluster, framework="nemo")
    assert with_fp8.memory.weights == pytest.approx(without.memory.weights / 2)
    assert with_fp8.memory.gradients == without.memory.gradients
    assert with_fp8.step_time_s == without.step_time_s


def test_fp8_params_need_fp8() -> None:
    with pytest.raises(SpecError, match=r"\(--fp8-params, fp8_params=True\) need precision 'fp8'") as err:
        TrainJob(tokens=1e9, precision="bf16", fp8_params=True)
    assert "--precision fp8" in (err.value.hint or "")


def test_fp8_quantize_traffic_is_the_gemm_operands() -> None:
    """fp8 moves FP8_QUANTIZE_BYTES_PER_ELEMENT per GEMM input (forward) and output gradient (backward): the
    memory-bound time grows by exactly that traffic at the profile's bandwidth (dense model, TP 1)."""
    model = get_catalog().model("llama-2-7b")
    cluster = Cluster(device="h100-sxm", count=8)
    job = TrainJob(tokens=1e9, seq_len=4096, global_batch=64, micro_batch=1, zero=1, precision="fp8")
    fp8 = estimate_train(model, job, cluster)
    bf16 = estimate_train(model, dataclasses.replace(job, precision="bf16"), cluster)
    ops = gemm_operands_per_token(model)
    prof = get_catalog().efficiency("h100-sxm")
    dev = get_catalog().device("h100-sxm")
    tokens_per_device = job.global_batch * job.seq_len / cluster.count
    want = (
        FP8_QUANTIZE_BYTES_PER_ELEMENT
        * tokens_per_device
        * model.n_layers
        * (ops.dense_in + ops.dense_out)
        / (dev.mem_bw_bytes_per_s * prof.mem_bw_eff)
    )
    got = fp8.time_breakdown_s["memory_bound_s"] - bf16.time_breakdown_s["memory_bound_s"]
    assert got == pytest.approx(want, rel=1e-9)
    # Full recomputation quantizes the inputs once more.
    full = estimate_train(model, dataclasses.replace(job, recompute="full"), cluster)
    full_bf16 = estimate_train(model, dataclasses.replace(job, recompute="full", precision="bf16"), cluster)
    got_full = full.time_breakdown_s["memory_bound_s"] - full_bf16.time_breakdown_s["memory_bound_s"]
    assert got_full == pytest.approx(
        want * (2 * ops.dense_in + ops.dense_out) / (ops.dense_in + ops.dense_out)
    )


def test_moe_permutation_traffic_in_every_precision() -> None:
    """Qwen3-30B-A3B in bf16: the memory-bound time of an MoE step includes the permutation around the
    experts, e·h·(3k + 1) bytes per token per MoE block in the forward and again in the backward; with top-1
    routing it shrinks by exactly the difference in k."""
    model = get_catalog().model("qwen3-30b-a3b")
    cluster = Cluster(device="h100-sxm", count=8)
    job = TrainJob(tokens=1e9, seq_len=4096, global_batch=64, micro_batch=1, ep=8, zero=1)
    k8 = estimate_train(model, job, cluster)
    k1_model = model.replace(experts_top_k=1)
    k1 = estimate_train(k1_model, job, cluster)
    prof = get_catalog().efficiency("h100-sxm")
    dev = get_catalog().device("h100-sxm")
    tokens_per_device = job.global_batch * job.seq_len / cluster.count
    h, ff = model.d_model, model.ff_expert
    permute = 2.0 * h * 3 * (8 - 1) * 2.0
    # the SwiGLU over the routed experts' d_ff also scales with k (kernel.elementwise_bytes_per_token_layer)
    swiglu = 2.0 * ff * 3.0 * (8 - 1) * 3.0
    want = (
        tokens_per_device * model.n_layers * (permute + swiglu) / (dev.mem_bw_bytes_per_s * prof.mem_bw_eff)
    )
    got = k8.time_breakdown_s["memory_bound_s"] - k1.time_breakdown_s["memory_bound_s"]
    assert got == pytest.approx(want, rel=1e-9)


#: Published bf16 / fp8 pairs of the same layout and software (tests/estimate/data/published_runs.csv):
#: torchtitan December 2024 (8B FSDP on 8 and 128 H100, compile vs compile + Float8) and June 2025 (70B
#: FSDP 32 x TP 8, 8B FSDP 8 x TP 8; vanilla TP, float8 tensorwise).
FP8_PAIRS = [
    ("tt-8b-8-compile", "tt-8b-8-fp8"),
    ("tt-8b-128-compile", "tt-8b-128-fp8"),
    ("tt2506-70b-256-bf16", "tt2506-70b-256-fp8"),
    ("tt2506-8b-64-bf16", "tt2506-8b-64-fp8"),
]


@pytest.mark.parametrize(("bf16_id", "fp8_id"), FP8_PAIRS)
def test_fp8_speedup_matches_published_pairs(bf16_id: str, fp8_id: str) -> None:
    """Golden: the fp8 / bf16 throughput ratio of one layout is the GEMM-rate ratio (FP8_MATMUL_EFF_SCALE, from
    GEMM benchmarks) less the quantize traffic; neither is fitted to these runs. Published 1.28, 1.29, 1.36,
    1.16; predicted within 7% each (+1.9%, +1.6%, +0.6%, +6.1%). Without the quantize traffic the four
    were +8.5%, +8.1%, +4.4%, +11.0%."""
    from tests.estimate.published_runs import cluster, load_runs

    runs = {r.id: r for r in load_runs()}
    lo, hi = runs[bf16_id], runs[fp8_id]
    assert lo.job.precision == "bf16" and hi.job.precision == "fp8"
    assert dataclasses.replace(hi.job, precision="bf16") == lo.job  # the same layout otherwise
    est_lo = estimate_train(lo.model, lo.job, cluster(lo), framework=lo.family)
    est_hi = estimate_train(hi.model, hi.job, cluster(hi), framework=hi.family)
    published = hi.published_tokens_per_s_per_gpu / lo.published_tokens_per_s_per_gpu
    predicted = est_hi.tokens_per_s / est_lo.tokens_per_s
    assert predicted / published - 1.0 == pytest.approx(0.0, abs=0.07), (predicted, published)
