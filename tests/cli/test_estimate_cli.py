"""The `mlcost estimate` CLI: JSON contract (docs/json.md), readable tables, and clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlcost.cli.main import main

TRAIN_KEYS = {
    "params",
    "model_flops_per_step",
    "hardware_flops_per_step",
    "step_time_s",
    "tokens_per_s",
    "tflops_per_device",
    "mfu",
    "hfu",
    "memory_per_device_bytes",
    "fits",
    "total_time_s",
    "device_hours",
    "energy_kwh",
    "cost_usd",
    "co2_kg",
    "error_band",
    "assumptions",
}
MEMORY_KEYS = {"weights", "gradients", "optimizer", "activations", "other", "not_concurrent", "total"}
SERVE_KEYS = {
    "params",
    "ttft_s",
    "time_per_output_token_s",
    "tokens_per_s",
    "kv_cache_bytes",
    "memory_per_device_bytes",
    "fits",
    "max_batch",
    "cost_per_million_output_tokens_usd",
    "assumptions",
}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "estimate",
        "train",
        "--model",
        "llama-3.1-8b",
        "--device",
        "h100-sxm",
        "--gpus",
        "64",
        "--tokens",
        "1e12",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert data.keys() >= TRAIN_KEYS
    assert data["memory_per_device_bytes"].keys() >= MEMORY_KEYS
    assert data["params"] == 8_030_261_248
    assert data["fits"] is True
    assert 0 < data["mfu"] <= data["hfu"] < 1
    assert data["total_time_s"] == pytest.approx(data["steps"] * data["step_time_s"])
    assert {a["name"] for a in data["assumptions"]} >= {
        "device",
        "price_usd_per_device_h",
        "carbon_kg_per_kwh",
        "pue",
    }
    assert data["error_band"]["relative"] > 0


def test_serve_json_contract(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "estimate",
        "serve",
        "--model",
        "llama-3.1-70b",
        "--device",
        "h100-sxm",
        "--tp",
        "4",
        "--batch",
        "16",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert data.keys() >= SERVE_KEYS
    assert data["ttft_s"] > 0 and data["time_per_output_token_s"] > 0 and data["max_batch"] >= 16


def test_table_output_mentions_fit_suggestions(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "estimate",
        "train",
        "--model",
        "llama-2-70b",
        "--device",
        "a100-80gb",
        "--gpus",
        "64",
        "--zero",
        "0",
        "--tokens",
        "1e9",
    )
    assert code == 0
    assert "does not fit" in out and "--zero 3" in out


def test_too_few_devices_says_how_many(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "estimate",
        "train",
        "--model",
        "llama-2-70b",
        "--device",
        "a100-80gb",
        "--gpus",
        "8",
        "--tokens",
        "1e9",
        "--seq-len",
        "2048",
        "--global-batch",
        "512",
        "--json",
    )
    data = json.loads(out)
    assert code == 0 and data["fits"] is False
    assert "fits on 16 × a100-80gb" in data["fit_suggestions"][0]


def test_config_json_path(capsys: pytest.CaptureFixture[str]) -> None:
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "hf_configs"
    path = sorted(fixture.glob("*.json"))[0]
    code, out, _ = run(
        capsys, "estimate", "train", "--model", str(path), "--gpus", "8", "--tokens", "1e9", "--json"
    )
    assert code == 0, out
    assert json.loads(out)["params"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "llama-3-8b"], "did you mean"),
        (["--device", "h100"], "did you mean"),
        (["--region", "us-eest-1", "--provider", "aws"], "us-east-1"),
        (["--tp", "3", "--gpus", "6"], "does not divide the 32 attention heads"),
        (["--pp", "40", "--gpus", "40"], "a stage would get no layer"),
        (["--gpus", "10", "--tp", "4"], "not divisible by TP×PP"),
        (["--global-batch", "100", "--micro-batch", "3"], "not divisible by micro-batch"),
        (["--precision", "bf17"], "precision must be one of"),
        (["--device", "v100-16gb", "--precision", "bf16"], "has no bf16 units"),
        (["--tokens", "lots"], "--tokens must be a count"),
    ],
)
def test_bad_input_exit_2_without_traceback(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, "estimate", "train", *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err + out


def test_malformed_config_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    code, _, err = run(capsys, "estimate", "train", "--model", str(bad))
    assert code == 2 and "config" in err and "Traceback" not in err


def test_help_and_estimate_do_not_import_torch() -> None:
    """The core stays light: --help and an estimate never import torch (DESIGN principle 6)."""
    code = (
        "import sys; from mlcost.cli.main import main; "
        "main(['--help']); main(['estimate','train','--tokens','1e9','--json']); "
        "bad = [m for m in ('torch','transformers','pynvml') if m in sys.modules]; "
        "assert not bad, bad"
    )
    from tests.no_import import run_refusing

    proc = run_refusing(code, ("torch", "transformers", "pynvml"))
    assert proc.returncode == 0, proc.stderr[-2000:]
