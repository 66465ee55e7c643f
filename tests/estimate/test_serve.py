"""Serving estimates: physics checks with hand-computed numbers."""

from __future__ import annotations

import pytest

from mlcost.catalog import get_catalog
from mlcost.estimate import count_params, estimate_serve
from mlcost.estimate.memory import kv_cache_bytes
from mlcost.spec import Cluster, ServeJob

CAT = get_catalog()


def test_decode_is_weight_bandwidth_bound_at_batch_1() -> None:
    """Llama-3.1-8B bf16 on one H100: each token reads all 16 GB of weights; at 3.35 TB/s × the engine's
    decode bandwidth efficiency that is ~6 ms (the usual rule of thumb), plus the engine's fixed cost per
    iteration (vLLM row of engines.csv)."""
    model = CAT.model("llama-3.1-8b")
    est = estimate_serve(model, ServeJob(prompt_len=128, output_len=128, batch=1), Cluster(device="h100-sxm"))
    eng = CAT.engine_profile("vllm", "h100-sxm")
    weights = count_params(model).total * 2
    assert est.bound == "memory"
    expected = weights / (3.35e12 * eng.decode_mem_bw_eff) + eng.iteration_overhead_s + eng.per_seq_overhead_s
    assert est.time_per_output_token_s == pytest.approx(expected, rel=0.05)
    bare = estimate_serve(
        model,
        ServeJob(prompt_len=128, output_len=128, batch=1),
        Cluster(device="h100-sxm"),
        engine_profile=eng.replace(iteration_overhead_s=0.0, per_seq_overhead_s=0.0),
    )
    assert est.time_per_output_token_s - bare.time_per_output_token_s == pytest.approx(
        eng.iteration_overhead_s + eng.per_seq_overhead_s, rel=1e-6
    )


def test_kv_cache_formula() -> None:
    """2 · layers · kv_heads · head_dim · bytes · context · batch (Llama-2-70B: 80 layers, 8 KV heads, 128)."""
    model = CAT.model("llama-2-70b")
    assert float(kv_cache_bytes(model, 4096, 1, 1, 2)) == 2 * 80 * 8 * 128 * 2 * 4096
    # TP 16 > 8 KV heads: heads are replicated, one per device.
    assert float(kv_cache_bytes(model, 4096, 1, 16, 2)) == 2 * 80 * 1 * 128 * 2 * 4096


def test_quantisation_and_batching_lower_cost_per_token() -> None:
    model = CAT.model("llama-3.1-8b")
    cl = Cluster(device="h100-sxm", price_usd_per_device_h=2.0)
    base = estimate_serve(model, ServeJob(batch=1), cl)
    int4 = estimate_serve(model, ServeJob(batch=1, weight_precision="int4"), cl)
    batched = estimate_serve(model, ServeJob(batch=32), cl)
    assert int4.weights_bytes < base.weights_bytes / 3.5
    assert int4.time_per_output_token_s < base.time_per_output_token_s
    assert batched.cost_per_million_output_tokens_usd < base.cost_per_million_output_tokens_usd / 5  # type: ignore[operator]


def test_max_batch_is_the_largest_that_fits() -> None:
    model = CAT.model("llama-3.1-8b")
    cl = Cluster(device="l4")
    est = estimate_serve(model, ServeJob(batch=1, prompt_len=2048, output_len=512), cl)
    assert est.max_batch >= 1
    assert estimate_serve(model, ServeJob(batch=est.max_batch, prompt_len=2048, output_len=512), cl).fits
    assert not estimate_serve(
        model, ServeJob(batch=est.max_batch + 1, prompt_len=2048, output_len=512), cl
    ).fits


def test_model_too_big_for_device_has_max_batch_zero() -> None:
    est = estimate_serve(CAT.model("llama-2-70b"), ServeJob(), Cluster(device="l4"))
    assert not est.fits and est.max_batch == 0


def test_moe_decode_reads_only_touched_experts() -> None:
    model = CAT.model("mixtral-8x7b")
    cl = Cluster(device="h100-sxm", count=2)
    one = estimate_serve(model, ServeJob(batch=1, tp=2), cl)
    many = estimate_serve(model, ServeJob(batch=64, tp=2), cl)
    # batch 1 touches 2 of 8 experts per layer: well under the full-weight read time.
    full_read_s = count_params(model).total * 2 / 2 / (3.35e12 * CAT.efficiency("h100-sxm").mem_bw_eff)
    assert one.time_per_output_token_s < 0.5 * full_read_s
    assert many.time_per_output_token_s > one.time_per_output_token_s
