from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlcost.cli.main import main


def test_env_json_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLCOST_LEDGER", str(tmp_path / "l.db"))
    assert main(["env", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in (
        "cpu",
        "cores",
        "memory_total_bytes",
        "gpus",
        "torch",
        "transformers",
        "energy",
        "ledger",
        "catalog",
    ):
        assert key in data
    assert data["ledger"]["url"].endswith("l.db") and data["ledger"]["from_env"]
    assert set(data["energy"]) >= {"nvml", "rapl", "note"}
    from mlcost.catalog.schema import ISA_LEVELS

    assert data["cpu"]["isa"] in ISA_LEVELS  # from the one CPU reader, mlcost.catalog.host


def test_env_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    assert "CPU" in out and "energy" in out and "ledger" in out
