from __future__ import annotations

import json

import pytest

from mlcost.cli.main import main

CONTRACT = (
    "run_id",
    "status",
    "step_time_s",
    "step_time_p90_s",
    "tokens_per_s",
    "achieved_flops_per_s",
    "mfu",
    "peak_memory_bytes",
    "energy_j",
    "energy_source",
    "cost_usd",
    "co2_kg",
)
TINY = [
    "--model",
    "gpt2",
    "--layers",
    "2",
    "--d-model",
    "64",
    "--vocab",
    "512",
    "--seq-len",
    "32",
    "--micro-batch",
    "2",
]


def _json(capsys):
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return json.loads(out[0])


def test_help_does_not_import_torch():
    from tests.no_import import run_refusing

    code = "import sys; from mlcost.cli.main import build_app; build_app(); assert 'torch' not in sys.modules"
    proc = run_refusing(code)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_dry_run_json_contract_without_torch(tmp_path):
    code = (
        "import sys; from mlcost.cli.main import main;"
        f"rc = main(['measure', 'train', *{TINY!r}, '--steps', '3', '--dry-run', '--json', '--ledger', "
        f"{str(tmp_path / 'r.db')!r}]);"
        "assert 'torch' not in sys.modules; sys.exit(rc)"
    )
    from tests.no_import import run_refusing

    proc = run_refusing(code)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for key in CONTRACT:
        assert key in out
    assert out["status"] == "completed" and out["dry_run"] is True and out["energy_source"] == "replay"


def test_too_big_preset_is_a_clear_error(capsys, tmp_path):
    rc = main(["measure", "train", "--model", "llama-3.1-8b", "--ledger", str(tmp_path / "r.db")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "needs ~" in err and "--layers" in err


def test_unknown_strategy_is_a_clear_error(capsys, tmp_path):
    rc = main(
        ["measure", "train", *TINY, "--strategy", "bf61", "--dry-run", "--ledger", str(tmp_path / "r.db")]
    )
    assert rc == 2
    assert "did you mean" in capsys.readouterr().err


def test_train_json_contract(capsys, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    rc = main(
        [
            "measure",
            "train",
            *TINY,
            "--steps",
            "3",
            "--warmup",
            "1",
            "--json",
            "--ledger",
            str(tmp_path / "r.db"),
        ]
    )
    assert rc == 0
    out = _json(capsys)
    for key in CONTRACT:
        assert key in out, key
    assert out["status"] == "completed" and out["energy_source"] in ("nvml", "rapl", "estimated")
    assert out["step_time_s"] > 0 and out["tokens_per_s"] > 0


@pytest.mark.slow
def test_compare_table_and_json(capsys, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    args = ["measure", "train", *TINY, "--steps", "3", "--warmup", "1", "--ledger", str(tmp_path / "r.db")]
    rc = main([*args, "--compare", "checkpointing,bf16", "--json"])
    assert rc == 0
    out = _json(capsys)
    assert [r["strategy"] for r in out["runs"]] == ["baseline", "checkpointing", "bf16"]
    assert out["baseline"] == out["runs"][0]["run_id"]
    for run in out["runs"]:
        assert run["verdict"]["label"] in ("pays", "does not pay on this hardware")
        for key in CONTRACT:
            assert key in run
    rc = main([*args, "--compare", "grad-accum=2"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "speedup" in text and "grad-accum=2" in text and "verdict" in text


def test_serve_json(capsys, tmp_path):
    pytest.importorskip("transformers")
    rc = main(
        [
            "measure",
            "serve",
            "--model",
            "gpt2",
            "--layers",
            "1",
            "--d-model",
            "32",
            "--vocab",
            "256",
            "--prompt-len",
            "8",
            "--output-len",
            "4",
            "--requests",
            "2",
            "--json",
            "--ledger",
            str(tmp_path / "r.db"),
        ]
    )
    assert rc == 0
    out = _json(capsys)
    assert out["kind"] == "serve" and out["ttft_s"] > 0 and out["time_per_output_token_s"] > 0


def test_dry_run_compare_json_has_intervals(capsys, tmp_path):
    """--compare with interleaved --repeats: each strategy's run ids, a 95% interval and a verdict only
    when the interval supports one (identical replayed step times: no clear difference)."""
    args = [*TINY, "--steps", "4", "--dry-run", "--ledger", str(tmp_path / "r.db")]
    rc = main(["measure", "train", *args, "--compare", "fused", "--repeats", "2", "--json"])
    assert rc == 0
    out = _json(capsys)
    base, fused = out["runs"]
    assert base["strategy"] == "baseline" and base["speedup_interval"] is None and len(base["run_ids"]) == 2
    ci = fused["speedup_interval"]
    assert len(fused["run_ids"]) == 2 and ci["steps"] == [8, 8]
    assert ci["low"] <= ci["speedup"] <= ci["high"] and ci["verdict"] == "no clear difference"
    assert "no clear difference" in fused["verdict"]["reason"]


def test_train_is_given_this_hosts_calibration_by_the_edge(capsys, tmp_path):
    """The CLI (the application edge) hands the run this host's saved calibration: MFU uses its peak."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from mlcost import paths
    from mlcost.calibrate.profile import save_calibration
    from mlcost.catalog import detect_host
    from tests.measure.test_facts import CALIBRATED_FP32_FLOPS_PER_S, calibration_for

    save_calibration(calibration_for(detect_host()), paths.profile_dir())
    args = ["measure", "train", *TINY, "--steps", "2", "--warmup", "1", "--json"]
    rc = main([*args, "--ledger", str(tmp_path / "r.db")])
    assert rc == 0
    out = _json(capsys)
    assert out["mfu_peak_source"].startswith("calibrated profile")
    assert out["mfu_peak_flops_per_s"] == pytest.approx(CALIBRATED_FP32_FLOPS_PER_S)
    assert out["predicted"]["device"] == "local"


@pytest.mark.slow
def test_serve_continuous_batching_json(capsys, tmp_path):
    """--engine hf: transformers' continuous batching under Poisson arrivals, with the simulator's
    prediction under the same keys."""
    pytest.importorskip("transformers")
    args = ["measure", "serve", "--model", "llama-3.1-8b", "--layers", "1", "--d-model", "64", "--heads", "4"]
    args += ["--vocab", "256", "--prompt-len", "8", "--output-len", "4", "--requests", "6", "--warmup", "2"]
    args += ["--engine", "hf", "--rps", "20", "--json", "--ledger", str(tmp_path / "r.db")]
    assert main(args) == 0
    out = _json(capsys)
    assert out["kind"] == "serve" and out["strategy"] == "hf-continuous-batching" and out["rps"] == 20
    for key in ("ttft_s", "ttft_p90_s", "itl_p50_s", "tokens_per_s", "requests_per_s"):
        assert out[key] > 0, key
        assert out["predicted"][key] > 0, key
    assert out["predicted"]["batching"] == "continuous" and "engine_source" in out["predicted"]
