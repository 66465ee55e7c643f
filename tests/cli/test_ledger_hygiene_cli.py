"""Ledger hygiene at the command line (issue #9 item 4): read-only commands create nothing, in-memory
SQLite is refused for measured runs, dry runs are hidden unless asked for, deleting asks first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlcost.cli.main import main

DRY = ["measure", "train", "--model", "gpt2", "--layers", "1", "--d-model", "32", "--heads", "2"]
DRY += ["--vocab", "64", "--seq-len", "8", "--steps", "2", "--warmup", "0", "--dry-run", "--json"]


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "sub" / "ledger.db"
    monkeypatch.setenv("MLCOST_LEDGER", str(path))
    return path


def test_read_only_commands_create_no_ledger(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 0
    assert main(["runs"]) == 0 and "no runs" in capsys.readouterr().out
    assert main(["runs", "show", "abc"]) == 2
    assert "does not exist yet" in capsys.readouterr().err
    assert not ledger.exists() and not ledger.parent.exists()


@pytest.mark.parametrize("memory", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_ledger_refused_for_measured_runs(memory: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*DRY, "--ledger", memory]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "in-memory" in err and "--ledger" in err and "MLCOST_LEDGER" in err


def test_dry_runs_hidden_unless_asked(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(DRY) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    assert main(["runs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 0
    for flag in ("--all", "--include-dry-run"):
        assert main(["runs", flag, "--json"]) == 0
        runs = json.loads(capsys.readouterr().out)["runs"]
        assert [r["run_id"] for r in runs] == [run_id] and runs[0]["dry_run"] is True


def test_delete_asks_first(ledger: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(DRY) == 0
    run_id = json.loads(capsys.readouterr().out)["run_id"]
    assert main(["runs", "delete", run_id[:8]]) == 2  # stdin is not a terminal under pytest
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--yes" in err
    assert main(["runs", "show", run_id, "--json"]) == 0  # still there
    capsys.readouterr()
    assert main(["runs", "delete", run_id[:8], "--yes", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"deleted": run_id}
    assert main(["runs", "show", run_id]) == 2
