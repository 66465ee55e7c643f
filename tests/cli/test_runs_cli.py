from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlcost.cli.main import main
from mlcost.measure.ledger import Ledger, runs_table
from mlcost.measure.record import RunRecord


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    with Ledger(url) as led:
        a = RunRecord(
            run_id="a" * 32, model="gpt2-tiny", strategy="fp32", started_at="2025-01-01T00:00:00+00:00"
        )
        b = RunRecord(
            run_id="b" * 32, model="gpt2-tiny", strategy="bf16", started_at="2025-01-02T00:00:00+00:00"
        )
        led.start_run(a)
        led.finish_run(
            a.run_id,
            "completed",
            {"step_time_s": 0.2, "tokens_per_s": 1000.0, "energy_j": 10.0, "energy_source": "estimated"},
        )
        led.start_run(b)
        led.finish_run(b.run_id, "completed", {"step_time_s": 1.4, "tokens_per_s": 140.0, "energy_j": 70.0})
    return url


def _json(capsys: pytest.CaptureFixture[str]) -> dict:
    out = capsys.readouterr().out
    return json.loads(out)


def test_runs_list_json(ledger_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--ledger", ledger_url, "--json"]) == 0
    data = _json(capsys)
    assert set(data) == {"ledger", "count", "runs"}
    assert data["count"] == 2
    assert [r["run_id"][0] for r in data["runs"]] == ["b", "a"]
    run = data["runs"][0]
    for key in ("run_id", "kind", "status", "display_status", "model", "strategy", "metrics", "provenance"):
        assert key in run
    assert main(["runs", "--ledger", ledger_url, "--json", "--limit", "1"]) == 0
    assert _json(capsys)["count"] == 1


def test_runs_list_table_marks_estimated_energy(ledger_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--ledger", ledger_url]) == 0
    out = capsys.readouterr().out
    assert "aaaaaaaa" in out and "bbbbbbbb" in out
    assert "~10.0 J" in out and "estimated" in out


def test_runs_show_compare_delete(ledger_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "show", "aaa", "--ledger", ledger_url, "--json"]) == 0
    assert _json(capsys)["run"]["metrics"]["step_time_s"] == 0.2
    assert main(["runs", "--ledger", ledger_url, "show", "aaa"]) == 0  # ledger given on the group
    assert "gpt2-tiny" in capsys.readouterr().out
    assert main(["runs", "compare", "aaa", "bbb", "--ledger", ledger_url, "--json"]) == 0
    data = _json(capsys)
    assert data["metrics"]["step_time_s"]["ratios"] == pytest.approx([1.0, 7.0])
    assert main(["runs", "compare", "aaa", "bbb", "--ledger", ledger_url]) == 0
    assert "7.00×" in capsys.readouterr().out
    assert main(["runs", "delete", "bbb", "--ledger", ledger_url, "--json", "--yes"]) == 0
    assert _json(capsys) == {"deleted": "b" * 32}


def test_runs_errors_are_one_line(ledger_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "show", "ccc", "--ledger", ledger_url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlcost: error: no run 'ccc'") and "Traceback" not in err
    assert main(["runs", "--ledger", "nosuchdialect://x"]) == 2
    assert main(["runs", "compare", "aaa", "--ledger", ledger_url]) == 2


def test_runs_mark_stale(ledger_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with Ledger(ledger_url) as led:
        led.start_run(RunRecord(run_id="c" * 32, host="elsewhere", pid=1))
        with led.engine.begin() as conn:  # silent for a day
            conn.execute(runs_table.update().values(heartbeat_at="2025-01-01T00:00:00+00:00"))
    assert main(["runs", "mark-stale", "--older-than", "2h", "--ledger", ledger_url, "--json"]) == 0
    assert _json(capsys) == {"marked": ["c" * 32]}
