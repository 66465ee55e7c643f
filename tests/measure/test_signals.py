"""Kill `mlcost measure train` mid-run and check the ledger: SIGTERM/SIGINT → interrupted with partial
metrics; SIGKILL → still 'running' in the ledger, seen as dead and marked stale."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from mlcost.measure.ledger import Ledger

TINY_ARGS = [
    "--model",
    "gpt2",
    "--layers",
    "1",
    "--d-model",
    "32",
    "--vocab",
    "256",
    "--seq-len",
    "16",
    "--micro-batch",
    "1",
    "--steps",
    "100000",
    "--warmup",
    "0",
]


def _start(db):
    env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error"}
    return subprocess.Popen(
        [sys.executable, "-m", "mlcost", "measure", "train", *TINY_ARGS, "--ledger", str(db), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def _wait_running_with_steps(db, proc, timeout_s=240.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlcost exited early: {proc.stderr.read().decode()[-2000:]}")
        if db.exists():
            runs = Ledger(str(db)).list_runs()
            if runs and runs[0].status == "running" and (runs[0].metrics.get("steps_done") or 0) > 0:
                return runs[0]
        time.sleep(0.5)
    proc.kill()
    pytest.fail("the run never checkpointed metrics")


@pytest.mark.parametrize(
    "sig",
    [signal.SIGTERM, pytest.param(signal.SIGINT, marks=pytest.mark.slow)],
    ids=["SIGTERM", "SIGINT"],
)
def test_terminate_records_interrupted_with_partial_metrics(tmp_path, sig):
    db = tmp_path / "runs.db"
    proc = _start(db)
    run = _wait_running_with_steps(db, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()[-2000:]
    rec = Ledger(str(db)).get(run.run_id)
    assert rec.status == "interrupted"
    assert rec.metrics["steps_done"] > 0
    assert rec.metrics.get("step_time_s") and rec.metrics.get("tokens_per_s")
    assert rec.finished_at is not None
    assert b'"status": "interrupted"' in out


@pytest.mark.slow
def test_sigkill_leaves_a_readable_running_row_marked_stale(tmp_path):
    db = tmp_path / "runs.db"
    proc = _start(db)
    run = _wait_running_with_steps(db, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    ledger = Ledger(str(db))
    rec = ledger.get(run.run_id)
    assert rec.status == "running" and rec.metrics["steps_done"] > 0, rec
    assert Ledger.liveness(rec) == "dead", (rec.pid, rec.host, rec.started_at)
    assert ledger.mark_stale(run.run_id) == [run.run_id]
    assert ledger.get(run.run_id).status == "interrupted"
