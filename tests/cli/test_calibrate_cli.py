from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlcost import context
from mlcost.calibrate import pipeline
from mlcost.calibrate.microbench import MicrobenchResult
from mlcost.cli.main import main
from mlcost.measure.ledger import Ledger
from mlcost.measure.record import RunRecord

SPEC = {
    "name": "gpt2-L2-d128",
    "n_layers": 2,
    "d_model": 128,
    "n_heads": 2,
    "d_ff": 512,
    "vocab_size": 1024,
    "max_seq_len": 128,
    "mlp": "gelu",
    "norm": "layernorm",
    "position": "learned",
    "tied_embeddings": True,
    "qkv_bias": True,
    "out_bias": True,
    "mlp_bias": True,
}


@pytest.fixture(autouse=True)
def _profile_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MLCOST_PROFILE_DIR", str(tmp_path / "profile"))
    context.invalidate()
    yield
    context.invalidate()


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    with Ledger(url) as led:
        rec = RunRecord(
            run_id="c" * 32,
            model="gpt2-L2-d128",
            strategy="baseline",
            device="cpu",
            config={
                "model_spec": SPEC,
                "shape": {"micro_batch": 4, "seq_len": 128, "precision": "fp32"},
                "global_batch": 4,
                "precision": "fp32",
            },
        )
        led.start_run(rec)
        led.finish_run(rec.run_id, "completed", {"step_time_s": 0.05, "peak_memory_bytes": 5e8})
        gpu = RunRecord(run_id="d" * 32, model="x", device="cuda:0", config={"model_spec": SPEC})
        led.start_run(gpu)
        led.finish_run(gpu.run_id, "completed", {"step_time_s": 0.01})
    return url


def _fake_mb(**_: object) -> MicrobenchResult:
    return MicrobenchResult(
        device="cpu",
        threads=2,
        matmul_flops_per_s={"float32": {128: 5e9, 256: 12e9, 512: 20e9, 1024: 25e9}, "bfloat16": {256: 1e9}},
        copy_bytes_per_s=8e9,
        elementwise_bytes_per_s={"add": 6e9, "gelu": 1e9},
        allreduce_bus_bytes_per_s={65536: 4e7},
        seconds=0.1,
    )


def test_report_json(ledger_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--report", "--ledger", ledger_url, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"profile", "device", "runs", "step_time_mape"}
    assert [r["run_id"] for r in out["runs"]] == ["c" * 32]  # the GPU run is not comparable
    row = out["runs"][0]
    assert row["measured_step_time_s"] == 0.05 and row["predicted_step_time_s"] > 0
    assert "not calibrated" in out["profile"]


def test_report_table(ledger_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calibrate", "--report", "--ledger", ledger_url]) == 0
    text = capsys.readouterr().out
    assert "cccccccc" in text and "MAPE over 1 runs" in text


def test_calibrate_no_runs_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(pipeline, "run_microbenchmarks", _fake_mb)
    assert main(["calibrate", "--no-runs", "--json", "--ledger", f"sqlite:///{tmp_path / 'x.db'}"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"device", "profile", "microbench", "fit", "provenance", "peak_source", "saved_to"}
    assert out["fit"] is None
    assert out["device"]["id"] == "local" and out["device"]["peak_flops_per_s"]["fp32"] == 25e9
    assert out["peak_source"].startswith("calibrated (mlcost calibrate, ")
    assert (tmp_path / "profile" / "profile.toml").is_file()
    # --device local now resolves, and the report uses the calibration
    assert main(["calibrate", "--report", "--json", "--ledger", f"sqlite:///{tmp_path / 'x.db'}"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["device"] == "local" and rep["profile"].startswith("calibrated")


def test_calibrate_no_runs_table(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(pipeline, "run_microbenchmarks", _fake_mb)
    assert main(["calibrate", "--no-runs"]) == 0
    text = capsys.readouterr().out
    assert "matmul_eff_max" in text and "layer_overhead_s" in text and "--device local" in text


def test_cli_module_imports_without_torch() -> None:
    code = "import sys, mlcost.cli.calibrate, mlcost.calibrate.pipeline; print('torch' in sys.modules)"
    from tests.no_import import run_refusing

    proc = run_refusing(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False"
