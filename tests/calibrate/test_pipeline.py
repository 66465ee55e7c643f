"""Ledger runs as fit measurements (mlcost.calibrate.pipeline.measurement_from_record)."""

from __future__ import annotations

from typing import Any

from mlcost.calibrate.pipeline import measurement_from_record
from mlcost.calibrate.runs import RunConfig
from mlcost.measure.record import RunRecord

SPEC = RunConfig(family="gpt2", n_layers=2, d_model=128, seq_len=128, micro_batch=4).spec()


def _record(metrics: dict[str, Any], **changes: Any) -> RunRecord:
    config = {
        "model_spec": SPEC.to_dict(),
        "shape": {"micro_batch": 4, "seq_len": 128, "precision": "fp32"},
        "global_batch": 4,
        "precision": "fp32",
        "attn_implementation": "sdpa",
    }
    config.update(changes.pop("config", {}))
    fields: dict[str, Any] = {"strategy": "baseline", "device": "cpu", **changes}
    return RunRecord(run_id="e" * 32, model=SPEC.name, config=config, metrics=metrics, **fields)


def test_fastest_step_and_runner_semantics() -> None:
    m = measurement_from_record(_record({"step_time_s": 0.05, "step_time_min_s": 0.04}))
    assert m is not None
    assert m.step_time_s == 0.04  # the fastest step, as the benchmark fits and scores
    # the runner's eager transformers modules: SDPA flash kernel on CPU, unfused element-wise ops
    assert m.job.flash_attention is True and m.job.fused_elementwise is False
    assert m.job.micro_batch == 4 and m.job.seq_len == 128 and m.source == "ledger:" + "e" * 32


def test_median_when_no_min_and_eager_attention() -> None:
    m = measurement_from_record(_record({"step_time_s": 0.05}, config={"attn_implementation": "eager"}))
    assert m is not None and m.step_time_s == 0.05 and m.job.flash_attention is False


def test_incomparable_runs_are_skipped() -> None:
    assert measurement_from_record(_record({"step_time_s": 0.05}, strategy="compile")) is None
    assert measurement_from_record(_record({"step_time_s": 0.05}, device="cuda:0")) is None
    assert measurement_from_record(_record({"step_time_s": 0.05}, world_size=2)) is None
    assert measurement_from_record(_record({})) is None
