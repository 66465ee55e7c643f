"""``measure serve`` carries the estimator's ``predicted`` block under the measured metrics' keys, and on a
calibrated CPU batch-1 decode is bound by the calibrated (GEMV) memory bandwidth."""

from __future__ import annotations

import dataclasses

import pytest

from mlcost.calibrate.profile import Calibration
from mlcost.catalog import builtin_catalog
from mlcost.estimate.params import count_params
from mlcost.measure.facts import predict_serve
from mlcost.measure.options import RunFacts, ServeShape
from tests.measure.test_facts import host
from tests.measure.test_runner_specs import TINY_LLAMA

SERVE_KEYS = ("ttft_s", "time_per_output_token_s", "request_time_s", "tokens_per_s")


def _facts(mem_bw_bytes_per_s: float) -> RunFacts:
    cat = builtin_catalog()
    cpu = host("epyc_avx2.txt")
    local = dataclasses.replace(
        cat.device("cpu-epyc-2vcpu"),
        id="local",
        peak_flops_per_s={"fp32": 60e9},
        mem_bw_bytes_per_s=mem_bw_bytes_per_s,
    )
    prof = dataclasses.replace(
        cat.efficiency("default-cpu"), device="local", mem_bw_eff=1.0, step_overhead_s=0.0
    )
    return RunFacts(
        cat, Calibration(device=local, profile=prof, provenance={"host_cpu": cpu.identity()}), host=cpu
    )


def test_predicted_block_has_the_measured_keys() -> None:
    pred = predict_serve(TINY_LLAMA, ServeShape(prompt_len=8, output_len=4, batch=2), "cpu", _facts(20e9))
    assert pred["device"] == "local" and pred["device_source"].startswith("calibrated")
    assert pred["batching"] == "static"
    for key in SERVE_KEYS:
        assert pred[key] > 0, key
    # a request = prefill + output_len decode steps; throughput = batch × output tokens per request time
    assert pred["request_time_s"] == pytest.approx(pred["ttft_s"] + 4 * pred["time_per_output_token_s"])
    assert pred["tokens_per_s"] == pytest.approx(2 * 4 / pred["request_time_s"])


def test_batch1_decode_streams_the_weights_at_the_calibrated_bandwidth() -> None:
    shape = ServeShape(prompt_len=16, output_len=16, batch=1)
    slow = predict_serve(TINY_LLAMA, shape, "cpu", _facts(10e9))
    fast = predict_serve(TINY_LLAMA, shape, "cpu", _facts(20e9))
    assert slow["bound"] == "memory" and fast["bound"] == "memory"
    weights = count_params(TINY_LLAMA).total * 4.0
    # TPOT = (weights + KV cache) / (bandwidth × the hf engine's decode efficiency) + its fixed costs:
    # twice the bandwidth, half the streaming time; the weights dominate it
    eng = builtin_catalog().engine_profile("hf", "cpu-epyc-2vcpu")
    fixed = eng.iteration_overhead_s + eng.per_seq_overhead_s
    stream_slow = slow["time_per_output_token_s"] - fixed
    stream_fast = fast["time_per_output_token_s"] - fixed
    assert stream_slow == pytest.approx(2 * stream_fast, rel=1e-6)
    assert stream_fast == pytest.approx(weights / (20e9 * eng.decode_mem_bw_eff), rel=0.05)


def test_no_spec_no_prediction_and_errors_are_reported() -> None:
    assert predict_serve(None, ServeShape(), "cpu", _facts(20e9)) == {}
    too_long = ServeShape(prompt_len=TINY_LLAMA.max_seq_len, output_len=8)
    assert "error" in predict_serve(TINY_LLAMA, too_long, "cpu", _facts(20e9))


def test_measured_serving_run_records_the_prediction(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("transformers")
    from mlcost.measure.contract import run_summary
    from mlcost.measure.ledger import Ledger
    from mlcost.measure.serve import run_serving

    with Ledger(f"sqlite:///{tmp_path / 'runs.db'}") as ledger:
        rec = run_serving(
            TINY_LLAMA,
            ServeShape(prompt_len=8, output_len=4, batch=1),
            requests=2,
            warmup=1,
            ledger=ledger,
            facts=_facts(20e9),
        )
        stored = ledger.get(rec.run_id)
    assert rec.status == "completed", rec.error
    assert stored.predicted["device"] == "local"
    out = run_summary(stored)
    for key in SERVE_KEYS:
        assert out[key] > 0 and out["predicted"][key] > 0, key
