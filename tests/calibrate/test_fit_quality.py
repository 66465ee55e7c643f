"""Calibration refuses to save a poor fit (issue #9 item 5): parameters at their bounds or a step-time
MAPE above 20%, unless --force, which saves with a warning. Synthetic measurements, no torch."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from mlcost.calibrate import pipeline
from mlcost.calibrate.fit import (
    MAX_FIT_MAPE,
    TIME_PARAMS,
    fit_problems,
    fit_profile,
    initial_profile,
    local_device,
    predict,
)
from mlcost.calibrate.microbench import MicrobenchResult
from mlcost.calibrate.runs import Measurement
from mlcost.catalog import get_catalog
from mlcost.cli.main import main
from tests.calibrate.test_fit import GRID


def _measurements(
    mb: MicrobenchResult, scale: list[float] | None = None, **truth: float
) -> list[Measurement]:
    dev = local_device(mb, get_catalog().device("cpu-epyc-2vcpu"))
    start = initial_profile(mb, get_catalog().efficiency("default-cpu"))
    profile = dataclasses.replace(start, **truth)
    probes = [
        Measurement(label="x", spec=c.spec(), job=c.job(), step_time_s=1.0, peak_delta_bytes=None)
        for c in GRID
    ]
    preds = predict(probes, dev, profile)
    factors = scale or [1.0] * len(GRID)
    return [
        Measurement(
            label=c.label, spec=c.spec(), job=c.job(), step_time_s=p["step_time_s"] * f, peak_delta_bytes=None
        )
        for c, p, f in zip(GRID, preds, factors, strict=True)
    ]


GOOD = {
    "matmul_eff_max": 0.62,
    "attention_eff": 0.11,
    "mem_bw_eff": 0.07,
    "layer_overhead_s": 0.0012,
    "step_overhead_s": 0.004,
}


def _fit(mb: MicrobenchResult, ms: list[Measurement]) -> Any:
    dev = local_device(mb, get_catalog().device("cpu-epyc-2vcpu"))
    return fit_profile(ms, dev, initial_profile(mb, get_catalog().efficiency("default-cpu")))


def test_good_fit_has_no_problems(fake_microbench: MicrobenchResult) -> None:
    assert fit_problems(_fit(fake_microbench, _measurements(fake_microbench, **GOOD))) == []


def test_noisy_runs_exceed_the_mape_threshold(fake_microbench: MicrobenchResult) -> None:
    # step times that no profile explains: alternate runs 2.5x slower and 2.5x faster than the model
    noise = [2.5 if i % 2 else 1 / 2.5 for i in range(len(GRID))]
    res = _fit(fake_microbench, _measurements(fake_microbench, noise, **GOOD))
    problems = fit_problems(res)
    assert res.time_mape > MAX_FIT_MAPE
    assert any("MAPE" in p and "above 20%" in p for p in problems)


def test_parameters_at_bounds_are_reported(fake_microbench: MicrobenchResult) -> None:
    res = _fit(fake_microbench, _measurements(fake_microbench, **GOOD))
    _lo, hi = TIME_PARAMS["step_overhead_s"]
    pinned = dataclasses.replace(
        res,
        profile=dataclasses.replace(
            res.profile, step_overhead_s=hi, layer_overhead_s=TIME_PARAMS["layer_overhead_s"][0]
        ),
    )
    problems = fit_problems(pinned)
    assert any("step_overhead_s" in p and "upper bound" in p for p in problems)
    assert any("layer_overhead_s" in p and "lower bound" in p for p in problems)


@pytest.fixture
def poor_fit_pipeline(
    fake_microbench: MicrobenchResult, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Path:
    """``mlcost calibrate`` with microbenchmarks faked and runs that no profile explains."""
    noise = [3.0 if i % 2 else 1 / 3.0 for i in range(len(GRID))]
    ms = _measurements(fake_microbench, noise, **GOOD)
    monkeypatch.setattr(pipeline, "run_microbenchmarks", lambda **_: fake_microbench)
    monkeypatch.setattr(pipeline, "measure_configs", lambda *a, **k: ms)
    monkeypatch.setattr(pipeline, "with_fastest_steps", lambda m: m)
    monkeypatch.setattr(pipeline, "merge_probe_rates", lambda rates, _m: rates)
    monkeypatch.setenv("MLCOST_LEDGER", f"sqlite:///{tmp_path / 'l.db'}")
    d = tmp_path / "profile"
    monkeypatch.setenv("MLCOST_PROFILE_DIR", str(d))
    return d


def test_calibrate_refuses_a_poor_fit(poor_fit_pipeline: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--json"]) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "not saved" in err and "MAPE" in err and "--force" in err
    assert out == ""
    assert not any(poor_fit_pipeline.glob("*.toml"))


def test_calibrate_force_saves_with_a_warning(
    poor_fit_pipeline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["calibrate", "--json", "--force"]) == 0
    _out, err = capsys.readouterr()
    assert "warning: saving a poor fit (--force)" in err
    assert any(poor_fit_pipeline.glob("*.toml"))
