"""`mlcost diff`: golden deltas between two plans that differ only in device count, --fail-above, and
bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlcost.cli.main import main


@pytest.fixture(scope="module")
def two_plans(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    import contextlib
    import io

    d = tmp_path_factory.mktemp("diff")
    out = []
    for n in (8, 16):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            args = ["plan", "train", "--model", "llama-3.1-8b", "--tokens", "1T", "--devices", "h100-sxm"]
            args += ["--providers", "aws", "--regions", "us-east-1"]  # one price: only the count differs
            assert main([*args, "--counts", str(n), "--json"]) == 0
        p = d / f"plan{n}.json"
        p.write_text(buf.getvalue())
        out.append(p)
    return out[0], out[1]


def test_golden_deltas_of_device_count(
    two_plans: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = two_plans
    assert main(["diff", str(a), str(b), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    pa, pb = (json.loads(p.read_text())["plans"][0] for p in (a, b))
    by = {m["name"]: m for m in d["metrics"]}
    # The deltas are B - A of the plans' own numbers (mlcost plan train on 8 vs 16 H100s).
    for name, key in (
        ("wall time", "total_time_s"),
        ("cost", "cost_usd"),
        ("energy", "energy_kwh"),
        ("CO2e", "co2_kg"),
        ("memory / device", "memory_per_device_bytes"),
    ):
        assert by[name]["delta"] == pytest.approx(pb[key] - pa[key])
        assert by[name]["delta_rel"] == pytest.approx(pb[key] / pa[key] - 1)
    # doubling data-parallel devices at the same layout halves wall time within 1% and keeps cost within 2%
    assert by["wall time"]["delta_rel"] == pytest.approx(-0.5, abs=0.01)
    assert abs(by["cost"]["delta_rel"]) < 0.02
    assert {"name": "count", "a": 8, "b": 16} in d["inputs"]
    assert main(["diff", str(a), str(b), "--format", "md"]) == 0
    md = capsys.readouterr().out
    assert "| count | 8 | 16 |" in md and "| cost |" in md


def test_fail_above(two_plans: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = two_plans
    rise = (
        json.loads(b.read_text())["plans"][0]["cost_usd"] / json.loads(a.read_text())["plans"][0]["cost_usd"]
        - 1
    )
    assert rise > 0
    assert main(["diff", str(a), str(b), "--fail-above", f"{rise * 100 / 2}%"]) == 1
    assert main(["diff", str(a), str(b), "--fail-above", "10%"]) == 0
    assert main(["diff", str(b), str(a), "--fail-above", "0%"]) == 0  # cost falls


def test_bad_input(two_plans: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, _ = two_plans
    other = tmp_path / "x.json"
    other.write_text('{"hello": 1}')
    assert main(["diff", str(a), str(other)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not an mlcost estimate" in err
    est = tmp_path / "e.json"
    assert main(["estimate", "train", "--json"]) == 0
    est.write_text(capsys.readouterr().out)
    assert main(["diff", str(a), str(est)]) == 2
    assert "cannot diff" in capsys.readouterr().err
    assert main(["diff", str(a), str(tmp_path / "missing.json")]) == 2


def test_json_contract_keys(two_plans: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """docs/json.md, `mlcost diff A B --json`."""
    a, b = two_plans
    assert main(["diff", str(a), str(b), "--json", "--fail-above", "10%"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d) == {
        "kind",
        "compares",
        "a",
        "b",
        "inputs",
        "metrics",
        "cost_change_rel",
        "fail_above_rel",
        "failed",
    }
    assert d["kind"] == "diff" and d["compares"] == "plan-train" and d["fail_above_rel"] == pytest.approx(0.1)
    for m in d["metrics"]:
        assert set(m) == {"name", "key", "format", "a", "b", "delta", "delta_rel"}


def test_two_runs_by_id(ledger_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from mlcost.measure.ledger import Ledger

    led = Ledger(ledger_url)
    runs = led.list_runs(limit=2)
    led.close()
    assert main(["diff", runs[1].run_id[:12], runs[0].run_id[:12], "--ledger", ledger_url, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["compares"] == "run"
    step = next(m for m in d["metrics"] if m["name"] == "step time")
    assert step["delta"] == pytest.approx(runs[0].metrics["step_time_s"] - runs[1].metrics["step_time_s"])
    assert main(["diff", "feedfacefeedface", runs[0].run_id, "--ledger", ledger_url]) == 2
