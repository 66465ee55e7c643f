"""Every bad-input example of issue #9 ("Why"): exit 2 and one line on stderr naming the flag the user typed
and the accepted range, no traceback, no ledger row; infeasible-but-valid requests exit 0 and say why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlcost.cli.main import main

PLAN = ["plan", "train", "--model", "llama-3.1-8b", "--tokens", "1e12"]
EST = ["estimate", "train", "--model", "llama-3.1-8b", "--tokens", "1e12"]
MEASURE = ["measure", "train", "--model", "gpt2", "--layers", "1", "--d-model", "32", "--heads", "2"]
MEASURE += ["--vocab", "64", "--seq-len", "8", "--steps", "1", "--warmup", "0", "--dry-run"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ledger = tmp_path / "ledger.db"
    monkeypatch.setenv("MLCOST_LEDGER", str(ledger))
    monkeypatch.setenv("MLCOST_PROFILE_DIR", str(tmp_path / "profiles"))
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    return ledger


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], *needles: str) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (argv, out, err)
    assert err.count("\n") == 1 and err.startswith("mlcost: error: "), err
    assert "Traceback" not in err + out
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def _rows(ledger: Path) -> int:
    if not ledger.exists():
        return 0
    import sqlite3

    with sqlite3.connect(ledger) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        return conn.execute("select count(*) from runs").fetchone()[0] if "runs" in tables else 0


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        # plan train: negative/zero lengths and batches, unitless durations, bad budgets and caps
        ([*PLAN, "--seq-len", "-1"], ["--seq-len", ">= 1"]),
        ([*PLAN, "--seq-len", "0"], ["--seq-len", ">= 1"]),
        ([*PLAN, "--global-batch", "0"], ["--global-batch", ">= 1"]),
        ([*PLAN, "--deadline", "30"], ["--deadline", "add a unit: 30d, 30h, 30m"]),
        ([*PLAN, "--budget-usd", "-5"], ["--budget-usd", "> 0"]),
        ([*PLAN, "--budget-usd", "0"], ["--budget-usd", "> 0"]),
        ([*PLAN, "--budget-usd", "nan"], ["--budget-usd", "finite"]),
        ([*PLAN, "--max-co2-kg", "-1"], ["--max-co2-kg", "> 0"]),
        ([*PLAN, "--precisions", "bf16,fp9"], ["--precisions", "fp8"]),
        ([*PLAN, "--counts", "8,0"], ["--counts", ">= 1"]),
        ([*PLAN, "--counts", "-8"], ["--counts", ">= 1"]),
        (
            ["plan", "serve", "--model", "llama-3.1-8b", "--requests-per-s", "5", "--tpot-ms", "nan"],
            ["--tpot-ms", "finite"],
        ),
        (
            [
                "tco",
                "--models",
                "1b,3b",
                "--train-tokens",
                "1e12",
                "--tokens-per-day",
                "1e9",
                "--horizon",
                "2",
            ],
            ["--horizon", "unit"],
        ),
        # estimate: zero divisors, GPU count, context of a RoPE model
        ([*EST, "--seq-len", "0"], ["--seq-len", ">= 1"]),
        ([*EST, "--micro-batch", "0"], ["--micro-batch", ">= 1"]),
        ([*EST, "--tp", "0"], ["--tp", ">= 1"]),
        ([*EST, "--pp", "0"], ["--pp", ">= 1"]),
        ([*EST, "--pue", "0.2"], ["--pue", "1.0 to 5.0"]),
        ([*EST, "--carbon-kg-per-kwh", "nan"], ["--carbon-kg-per-kwh", "finite"]),
        ([*EST, "--precision", "bf61"], ["--precision", "did you mean 'bf16'"]),
        (["estimate", "serve", "--gpus", "0"], ["--gpus", ">= 1"]),
        (
            ["estimate", "serve", "--model", "llama-3.1-8b", "--prompt-len", "1000000000"],
            ["--prompt-len", "131,072-token context", "config.json"],
        ),
        ([*EST, "--seq-len", "1000000"], ["--seq-len", "131,072-token context"]),
        # measure: shapes that used to fall back to defaults, and prices/PUE/carbon estimate rejects
        ([*MEASURE, "--d-model", "0"], ["--d-model", "from 1"]),
        ([*MEASURE, "--heads", "0"], ["--heads", "from 1"]),
        ([*MEASURE, "--global-batch", "0"], ["--global-batch", "from 1"]),
        ([*MEASURE, "--price-usd-per-h", "-1"], ["--price-usd-per-h", ">= 0"]),
        ([*MEASURE, "--pue", "0.2"], ["--pue", "1.0 to 5.0"]),
        ([*MEASURE, "--carbon-kg-per-kwh", "nan"], ["--carbon-kg-per-kwh", "finite"]),
        ([*MEASURE, "--recompute", "sometimes"], ["--recompute", "none, selective, full"]),
        (["measure", "serve", "--model", "gpt2", "--batch", "0"], ["--batch", "from 1"]),
        # runs
        (["runs", "--status", "done"], ["--status", "completed"]),
        (["runs", "mark-stale", "--older-than", "2"], ["--older-than", "unit"]),
    ],
)
def test_bad_value_is_one_line_naming_the_flag(
    capsys: pytest.CaptureFixture[str], _isolated: Path, argv: list[str], needles: list[str]
) -> None:
    err = _one_line_error(capsys, argv, *needles)
    assert "job." not in err and "setup." not in err  # no internal field names
    assert _rows(_isolated) == 0


def test_case_insensitive_choice(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*EST, "--precision", "BF16", "--gpus", "8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["step_time_s"] > 0


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", b'x = "\xff\xfe"\n', b"\x00" * 16])
def test_binary_files_are_reported_by_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    _one_line_error(capsys, [*EST, "--catalog", str(path)], "--catalog", "bad.toml")
    _one_line_error(capsys, ["allocate", str(path)], "allocation file", "bad.toml")


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"WORLD_SIZE": "abc"}, "WORLD_SIZE='abc'"),
        ({"LOCAL_WORLD_SIZE": "0"}, "LOCAL_WORLD_SIZE=0"),
        ({"WORLD_SIZE": "2"}, "not started by torchrun"),
    ],
)
def test_bad_environment_is_reported_by_name(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    _isolated: Path,
    env: dict[str, str],
    needle: str,
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    _one_line_error(capsys, MEASURE, needle)
    assert _rows(_isolated) == 0


def test_unwritable_profile_dir_fails_before_benchmarks(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("MLCOST_PROFILE_DIR", str(blocker / "profiles"))
    from mlcost.calibrate import pipeline

    def boom(**_: object) -> None:
        raise AssertionError("benchmarks ran before the profile directory was checked")

    monkeypatch.setattr(pipeline, "run_calibration", boom)
    _one_line_error(capsys, ["calibrate", "--quick"], "MLCOST_PROFILE_DIR", "not a writable directory")


def test_infeasible_budget_is_an_answer(capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*PLAN, "--budget-usd", "1", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["status"] == "infeasible"
    assert any("--budget-usd" in line for line in data["infeasible"])
