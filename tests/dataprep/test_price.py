"""Pricing goes through the estimator: the saving equals `mlcost estimate train` run on the token counts
before and after the cut."""

from __future__ import annotations

import json

import pytest

from mlcost.cli.main import main
from mlcost.dataprep import JobTarget, price_cut
from mlcost.errors import SpecError


def _estimate_train_cli(capsys: pytest.CaptureFixture[str], tokens: float) -> dict[str, float]:
    code = main(
        [
            "estimate",
            "train",
            "--model",
            "llama-3.1-8b",
            "--device",
            "h100-sxm",
            "--gpus",
            "64",
            "--tokens",
            repr(float(tokens)),
            "--json",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    return json.loads(out)


def test_saved_equals_estimate_train_run_twice(capsys: pytest.CaptureFixture[str]) -> None:
    before, after = 3.0e12, 2.4e12
    res = price_cut(before, after, JobTarget(model="llama-3.1-8b", device="h100-sxm", gpus=64))
    eb, ea = _estimate_train_cli(capsys, before), _estimate_train_cli(capsys, after)
    for key in ("device_hours", "cost_usd", "energy_kwh", "co2_kg", "total_time_s"):
        assert res.before[key] == pytest.approx(eb[key], rel=1e-12)
        assert res.after[key] == pytest.approx(ea[key], rel=1e-12)
        assert res.saved[key] == pytest.approx(eb[key] - ea[key], rel=1e-9)
        lo = eb["error_band"][key][0] - ea["error_band"][key][0]
        hi = eb["error_band"][key][1] - ea["error_band"][key][1]
        assert res.saved_ranges[key] == pytest.approx([lo, hi], rel=1e-9)
    assert res.saved["tokens"] == before - after
    assert res.error_band_relative == eb["error_band"]["relative"]


def test_same_compute_saves_nothing_and_trains_more_epochs() -> None:
    res = price_cut(1e12, 8e11, JobTarget(gpus=64, framing="same-compute", epochs=2))
    assert res.trained_tokens_before == res.trained_tokens_after == 2e12
    assert res.clean_epochs == pytest.approx(2.5)
    assert res.saved["cost_usd"] == 0.0 and res.saved["device_hours"] == 0.0 and res.saved["tokens"] == 0


def test_scale_to_applies_the_measured_share() -> None:
    res = price_cut(1000, 900, JobTarget(gpus=64, scale_to_tokens=15e12))
    assert res.corpus_tokens_before == 15e12 and res.corpus_tokens_after == pytest.approx(13.5e12)
    assert res.assumptions[0]["name"] == "scale_to_tokens"


def test_bad_targets_are_spec_errors() -> None:
    with pytest.raises(SpecError, match="--framing"):
        JobTarget(framing="same-money")  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="--epochs"):
        JobTarget(epochs=0)
