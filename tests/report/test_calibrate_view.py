"""``mlcost calibrate``'s table view: the serving engine fit (``--serve``) is shown, not only saved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlcost.calibrate import pipeline
from mlcost.calibrate.serve import EngineFit, ServeCalibration
from mlcost.catalog import builtin_catalog
from mlcost.cli.main import main
from mlcost.report.calibrate import calibration_view
from mlcost.report.console import render_text
from tests.cli.test_calibrate_cli import _fake_mb


def test_serve_fit_is_shown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLCOST_PROFILE_DIR", str(tmp_path / "profile"))
    monkeypatch.setattr(pipeline, "run_microbenchmarks", _fake_mb)
    assert main(["calibrate", "--no-runs", "--json", "--ledger", f"sqlite:///{tmp_path / 'x.db'}"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert "serving engine" not in render_text(calibration_view(d))
    cat = builtin_catalog()
    base = cat.engine_profile("hf", cat.device("cpu-epyc-2vcpu"))
    fit = EngineFit(
        params={
            "iteration_overhead_s": 0.0031,
            "per_seq_overhead_s": 0.0012,
            "matmul_eff_scale": 0.9,
            "decode_mem_bw_eff": 0.55,
        },
        iterations=331,
        median_abs_rel=0.081,
        total_time_rel=0.004,
    )
    cal = ServeCalibration(
        engine=base.replace(**fit.params),
        fit=fit,
        capacity_rps=4.4,
        workload={"prompt_tokens": 64, "output_tokens": 32},
    )
    d["serve"] = cal.to_dict()
    text = render_text(calibration_view(d), width=200)
    assert "serving engine hf (--serve) fitted on 331 iterations" in text
    assert "3.1 ms per iteration" in text and "1.2 ms per sequence" in text
    assert "median |error| 8.1%" in text and "capacity 4.40 requests/s for 64+32-token requests" in text
