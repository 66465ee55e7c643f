from __future__ import annotations

import json

import numpy as np
import pytest

from mlcost.measure.record import FINAL_STATUSES, RUN_STATUSES, RunRecord, json_safe


def test_round_trip_through_json() -> None:
    rec = RunRecord(
        kind="serve",
        model="gpt2-tiny",
        config={"batch": 8, "precision": ("fp32", "bf16")},
        strategy="fp32",
        device="cpu",
        world_size=2,
        metrics={"step_time_s": np.float64(0.25), "steps_done": np.int64(10), "loss_last": float("nan")},
        predicted={"step_time_s": 0.2},
        provenance={"hostname": "h"},
    )
    data = json.loads(json.dumps(rec.to_dict()))
    back = RunRecord.from_dict(data)
    assert back.run_id == rec.run_id and len(rec.run_id) == 32
    assert back.metrics == {"step_time_s": 0.25, "steps_done": 10, "loss_last": None}
    assert back.config["precision"] == ["fp32", "bf16"]
    assert back.to_dict() == data
    assert RunRecord.from_dict({**data, "added_in_a_later_version": 1}) == back


def test_validation_and_statuses() -> None:
    assert RUN_STATUSES == ("running", "completed", "failed", "oom", "diverged", "interrupted")
    assert "running" not in FINAL_STATUSES
    with pytest.raises(ValueError, match="status"):
        RunRecord(status="done")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind"):
        RunRecord(kind="eval")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="world_size"):
        RunRecord(world_size=0)


def test_duration_and_replace() -> None:
    rec = RunRecord(started_at="2025-01-01T00:00:00+00:00")
    assert rec.duration_s is None
    done = rec.replace(status="completed", finished_at="2025-01-01T00:01:30+00:00")
    assert done.duration_s == 90.0 and rec.status == "running"


def test_json_safe() -> None:
    assert json_safe({"a": (1, np.float32(0.5)), 2: float("inf")}) == {"a": [1, 0.5], "2": None}
    assert json_safe(np.arange(3)) == [0, 1, 2]
