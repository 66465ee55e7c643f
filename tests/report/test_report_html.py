"""`mlcost report`: size and sections from a 100-run ledger, empty ledger, bad input (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcost.cli.main import main
from mlcost.report.html import sections
from tests.report.conftest import make_ledger


def test_hundred_runs_under_5_mb(tmp_path: Path, plan_json: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = make_ledger(tmp_path / "l.db", 100)
    out = tmp_path / "r.html"
    assert main(["report", str(plan_json), "--ledger", url, "-o", str(out)]) == 0
    assert "100 runs" in capsys.readouterr().out
    text = out.read_text()
    assert out.stat().st_size < 5_000_000
    assert "http://" not in text.replace("http://www.w3.org", "") or 'src="http' not in text
    assert "<script src=" not in text
    for title in (
        "Time vs cost",
        "Where a step",
        "Memory per device",
        "Predicted vs measured step time",
        "Predicted vs measured peak memory",
        "Strategy comparison",
        "Whole job",
    ):
        assert title in text


def test_empty_ledger_says_so(tmp_path: Path) -> None:
    from mlcost.measure.ledger import Ledger

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    Ledger(url).close()
    out = tmp_path / "r.html"
    assert main(["report", "--ledger", url, "-o", str(out)]) == 0
    assert "has no runs" in out.read_text()


def test_bad_input_exits_2(
    tmp_path: Path, plan_json: Path, ledger_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.html"
    unrelated = tmp_path / "u.json"
    unrelated.write_text("[1, 2]")
    cases = [
        [str(plan_json), "--ledger", str(tmp_path / "missing.db")],
        [str(unrelated)],
        [str(plan_json), "--ledger", ledger_url, "--run", "ffffffffdeadbeef"],
    ]
    for args in cases:
        assert main(["report", *args, "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("mlcost: error:") and err.count("\n") == 1, err
        assert not out.exists()


def test_section_registry_order() -> None:
    assert sections()[:5] == ["plan", "estimate", "runs", "strategies", "calibration"]


def test_estimate_calibration_and_filters(tmp_path: Path, ledger_url: str, run_cli, capsys) -> None:
    est = tmp_path / "est.json"
    est.write_text(run_cli(["estimate", "train", "--gpus", "64", "--tokens", "1T", "--json"]))
    cal = tmp_path / "cal.json"
    cal.write_text(
        '{"profile": "local", "runs": [{"run_id": "abcdef123456", "model": "gpt2", "config": "mb2",'
        ' "measured_step_time_s": 0.05, "predicted_step_time_s": 0.048, "step_time_error_rel": -0.04}],'
        ' "step_time_mape": 0.04}'
    )
    out = tmp_path / "r.html"
    assert main(["report", str(est), str(cal), "--ledger", ledger_url, "--tag", "bf16", "-o", str(out)]) == 0
    assert "3 runs" in capsys.readouterr().out  # 12 fixture runs, every 4th is bf16
    text = out.read_text()
    assert "Training estimate" in text and "Where a step" in text and "Calibration" in text
    assert "step-time MAPE over 1 runs: 4.0%" in text
    assert main(["report", str(est), "--ledger", ledger_url, "--since", "2999-01-01", "-o", str(out)]) == 0
    assert "has no runs matching" in out.read_text()


def test_plan_estimate_reproduces_plan_one(plan_json: Path) -> None:
    """The report's breakdown of plan #1 is the estimator's answer for the same layout (same totals)."""
    import json

    from mlcost.cli.report import plan_estimate

    plan = json.loads(plan_json.read_text())
    est = plan_estimate(plan)
    assert est is not None
    p = plan["plans"][0]
    for key in ("total_time_s", "cost_usd", "energy_kwh", "co2_kg"):
        assert est[key] == pytest.approx(p[key], rel=1e-9)
    assert est["memory_per_device_bytes"]["total"] == pytest.approx(p["memory_per_device_bytes"], rel=1e-9)


def test_calibration_json_section(tmp_path: Path) -> None:
    cal = tmp_path / "cal.json"
    cal.write_text(
        '{"microbench": {}, "profile": {"matmul_eff_max": 0.5}, "peak_source": "calibrated",'
        ' "fit": {"time_mape": 0.05, "memory_mean_abs_rel": 0.1, "rows": []}}'
    )
    out = tmp_path / "r.html"
    assert main(["report", str(cal), "-o", str(out)]) == 0  # a file and no --ledger: no runs section
    text = out.read_text()
    assert "Calibrated efficiency profile" in text and "step-time MAPE 5.0%" in text
    assert "Measured runs" not in text


def test_serving_estimate_and_plan(tmp_path: Path, run_cli) -> None:
    est = tmp_path / "serve.json"
    est.write_text(
        run_cli(["estimate", "serve", "--model", "llama-3.1-70b", "--tp", "4", "--batch", "32", "--json"])
    )
    plan = tmp_path / "plan_serve.json"
    plan.write_text(run_cli(["plan", "serve", "--model", "llama-3.1-8b", "--requests-per-s", "5", "--json"]))
    out = tmp_path / "r.html"
    assert main(["report", str(est), str(plan), "-o", str(out)]) == 0
    text = out.read_text()
    assert "Serving estimate" in text and "Serving plan" in text and "kv_cache" in text


def test_registered_section_reads_its_json(tmp_path: Path) -> None:
    """How compress/data results join the report: register a section under their JSON's `kind`."""
    from mlcost.report.html import Figure, ReportInputs, Section, register_section, unregister_section
    from mlcost.report.view import Table, View

    @register_section("compress-example", 60)
    def _section(inp: ReportInputs) -> Section | None:
        res = inp.extra.get("compress-example")
        if res is None:
            return None
        v = View()
        t = v.table(Table("variants", ["variant", "size"]))
        for name, size in res["variants"].items():
            t.add(name, str(size))
        fig = Figure(
            [{"type": "bar", "x": list(res["variants"]), "y": list(res["variants"].values())}],
            {"xaxis": {"title": {"text": "variant"}}, "yaxis": {"title": {"text": "bytes"}}},
            "From the example JSON.",
        )
        return Section("Compression example", figures=[fig], views=[v])

    try:
        src = tmp_path / "c.json"
        src.write_text('{"kind": "compress-example", "variants": {"int8": 100, "int4": 50}}')
        out = tmp_path / "r.html"
        assert main(["report", str(src), "-o", str(out)]) == 0
        text = out.read_text()
        assert "Compression example" in text and "int4" in text and "From the example JSON." in text
    finally:
        unregister_section("compress-example")
    assert main(["report", str(src), "-o", str(out)]) == 2  # unregistered: not an mlcost result
