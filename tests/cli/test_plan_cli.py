"""`mlcost plan train` / `mlcost plan serve`: JSON contract, rendering, infeasible answers, bad input."""

from __future__ import annotations

import json

import pytest

from mlcost.cli.main import main

SMALL = [
    "--model",
    "gpt2",
    "--tokens",
    "2e9",
    "--max-devices",
    "8",
    "--devices",
    "a100-80gb,h100-sxm",
    "--seq-len",
    "1024",
    "--global-batch",
    "16",
]


def test_train_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "train", *SMALL, "--json", "--top", "3"]) == 0
    d = json.loads(capsys.readouterr().out)
    for key in ("plans", "pareto", "assumptions", "price_snapshot_date", "candidates_evaluated", "status"):
        assert key in d
    assert d["status"] == "ok" and len(d["plans"]) == 3
    p = d["plans"][0]
    for key in (
        "device",
        "count",
        "tp",
        "pp",
        "dp",
        "zero",
        "micro_batch",
        "recompute",
        "precision",
        "provider",
        "region",
        "pricing",
        "total_time_s",
        "cost_usd",
        "energy_kwh",
        "co2_kg",
        "fits",
    ):
        assert key in p


def test_train_human(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "train", *SMALL, "--deadline", "1d", "--explain"]) == 0
    out = capsys.readouterr().out
    for text in ("Top", "Pareto front", "Why #1 beats #2", "Assumptions", "Price snapshot date"):
        assert text in out


def test_train_spot_and_mix(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "plan",
                "train",
                *SMALL,
                "--spot",
                "--deadline",
                "2d",
                "--objective",
                "mix",
                "--weights",
                "cost=1,time=0.5",
                "--spot-interruptions-per-h",
                "0.05",
                "--json",
            ]
        )
        == 0
    )
    d = json.loads(capsys.readouterr().out)
    assert d["status"] == "ok"
    assert any(
        a["name"] == "spot_model" and a["value"]["interruptions_per_node_h"] == 0.05 for a in d["assumptions"]
    )


def test_train_infeasible_is_an_answer(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "plan",
                "train",
                "--model",
                "llama-3.1-8b",
                "--tokens",
                "1e12",
                "--deadline",
                "2d",
                "--max-devices",
                "64",
                "--devices",
                "h100-sxm",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "no feasible plan" in out and "nothing meets a 2.0 d deadline" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "train", "--model", "gpt2", "--tokens", "lots"],
        ["plan", "train", "--model", "gpt2", "--tokens", "1e9", "--deadline", "soon"],
        ["plan", "train", "--model", "gpt2", "--tokens", "1e9", "--objective", "speed"],
        ["plan", "train", "--model", "gpt2", "--tokens", "1e9", "--devices", "h1000"],
        ["plan", "train", "--model", "gpt2", "--tokens", "1e9", "--objective", "mix", "--weights", "speed=1"],
        ["plan", "serve", "--model", "gpt2"],
    ],
)
def test_bad_input_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err


def test_serve_json_and_human(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "plan",
        "serve",
        "--model",
        "llama-3.1-8b",
        "--requests-per-s",
        "5",
        "--prompt-len",
        "1024",
        "--output-len",
        "256",
        "--ttft-ms",
        "500",
        "--tpot-ms",
        "50",
    ]
    assert main([*args, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["status"] == "ok"
    for key in (
        "cost_per_million_output_tokens_usd",
        "monthly_cost_usd",
        "utilisation",
        "replicas",
        "quality_risk",
    ):
        assert key in d["plans"][0]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "serving plans" in out and "Price snapshot date" in out
