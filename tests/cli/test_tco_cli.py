"""`mlcost tco`: the --json contract, the rendered text, and clear exit-2 errors."""

from __future__ import annotations

import json

import pytest

from mlcost.cli.main import main

CONTRACT = {"candidates", "cheapest", "break_even", "assumptions", "horizon_s"}
FAST = ["--train-gpus", "64", "--tokens-per-day", "1e9", "--horizon", "1y"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_train_tokens_mode(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "tco", "--train-tokens", "100B", "--models", "llama-3.1-8b,3b", *FAST, "--json"
    )
    assert code == 0
    data = json.loads(out)
    assert set(data) >= CONTRACT
    assert data["mode"] == "train-tokens" and data["horizon_s"] == 365 * 86400
    names = [c["name"] for c in data["candidates"]]
    assert names == ["llama-3.1-8b", "llama-3b"]
    for c in data["candidates"]:
        assert c["train_tokens"] == 100e9 and c["feasible"]
        assert c["total_cost_usd"] == pytest.approx(c["train_cost_usd"] + c["serve_cost_usd"])
        assert {"tp", "pp", "zero", "recompute"} <= set(c["train"])
    assert data["cheapest"] == "llama-3b"
    assert any(a["name"] == "scaling_law" and "Hoffmann" in a["source"] for a in data["assumptions"])


def test_json_target_loss_mode(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tco", "--target-loss", "2.3", "--scaling-law", "besiroglu", *FAST, "--json")
    assert code == 0
    data = json.loads(out)
    roles = [c["role"] for c in data["candidates"]]
    assert "compute-optimal" in roles and "inference-aware" in roles
    for c in data["candidates"]:
        assert c["predicted_loss"] == pytest.approx(2.3, rel=1e-9)
    assert data["scaling_law"]["name"] == "besiroglu"
    for b in data["break_even"]:
        assert set(b) == {"output_tokens_per_day", "cheaper_below", "cheaper_above", "total_cost_usd"}


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "tco",
        "--target-loss",
        "2.3",
        "--models",
        "1.5b,4b",
        *FAST,
        "--revenue-per-million-tokens-usd",
        "1",
    )
    assert code == 0
    assert "cheapest at this traffic" in out
    assert "break-even" in out and "tokens/day" in out
    assert "NPV" in out and "Assumptions" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--target-loss", "1.5"], "irreducible"),
        (["--target-loss", "2.0", "--scaling-law", "kaplan"], "--scaling-law must be one of"),
        (["--train-tokens", "1T", "--models", "llama-9b-nope"], "unknown model"),
        (["--train-tokens", "1T"], "needs --models"),
        (["--target-loss", "2.0", "--train-tokens", "1T"], "exactly one"),
        ([], "exactly one"),
        (["--target-loss", "2.0", "--horizon", "soon"], "duration"),
        (["--target-loss", "2.0", "--serve-precision", "int3"], "--serve-precision must be one of"),
        (["--target-loss", "2.0", "--models", "350m"], "cannot reach"),
    ],
)
def test_bad_input_exits_2(capsys: pytest.CaptureFixture[str], argv: list[str], needle: str) -> None:
    code, out, err = run(capsys, "tco", "--tokens-per-day", "1e9", *argv)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err and out == ""
