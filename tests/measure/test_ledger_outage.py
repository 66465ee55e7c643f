"""The ledger's PostgreSQL server goes away while `mlcost measure train` runs (docs/ledger.md, "When the
database goes away"): back within the retry window, the run waits and records one whole row; gone for good,
the run ends with a clear LedgerError (the CLI: exit 2, one line) and writes nothing half-finished."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from mlcost.errors import LedgerError
from mlcost.measure.ledger import Ledger
from tests.measure.pg_cluster import Cluster, NoPostgres, start_cluster

#: Small, but not so small that the run ends before the test sees its first heartbeat: ~8 ms a step on a
#: quiet 2-core CPU, so 400 steps leave a window of seconds (at 1 ms a step, 40 steps ended unseen).
TINY = dict(layers=1, d_model=128, vocab=1024, seq_len=64, micro_batch=2)


@pytest.fixture(scope="module")
def pg() -> Cluster:  # type: ignore[misc]
    """CI's server ($MLCOST_TEST_POSTGRES_URL/_DIR) or a throwaway one; a skip saying why none can start."""
    given, datadir = os.environ.get("MLCOST_TEST_POSTGRES_URL"), os.environ.get("MLCOST_TEST_POSTGRES_DIR")
    if given and datadir:
        import sqlalchemy as sa

        yield Cluster(Path(datadir), int(sa.make_url(given).port or 5432))
        return
    try:
        cluster = start_cluster()
    except NoPostgres as exc:
        pytest.skip(f"no PostgreSQL server can start here: {exc}")
    yield cluster
    cluster.destroy()


def _running_row(url: str, proc: subprocess.Popen, timeout_s: float = 240.0):  # type: ignore[no-untyped-def]
    """The run's row once it is 'running' with a heartbeat (steps done), or fail."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mlcost exited before the outage: {proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]
        with Ledger(url, read_only=True) as led:
            runs = led.list_runs()
        if runs and runs[0].status == "running" and (runs[0].metrics.get("steps_done") or 0) > 0:
            return runs[0]
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the run never wrote a heartbeat")


def test_measure_train_waits_for_the_server_and_records_one_whole_row(pg: Cluster) -> None:
    url = pg.create_database()
    steps = 400
    args = [f"--{k.replace('_', '-')}" if i == 0 else str(v) for k, v in TINY.items() for i in range(2)]
    cmd = [sys.executable, "-m", "mlcost", "measure", "train", "--model", "gpt2", *args]
    cmd += ["--steps", str(steps), "--warmup", "0", "--ledger", url, "--json"]
    env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    row = _running_row(url, proc)
    pg.stop()
    down_at = time.monotonic()
    try:
        time.sleep(3.0)  # the next heartbeat (every 5 steps) or the final write waits for the server
        assert proc.poll() is None, "the run ended while the server was down: nothing was tested"
    finally:
        pg.start()
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    assert time.monotonic() - down_at >= 3.0
    with Ledger(url, read_only=True) as led:
        runs = led.list_runs()
        assert [r.run_id for r in runs] == [row.run_id]  # one row, not a second one
        rec = led.get(row.run_id)
    assert rec.status == "completed" and rec.finished_at is not None
    assert rec.metrics["steps_done"] == steps and rec.metrics["step_time_s"] > 0
    assert json.loads(out)["run_id"] == row.run_id


def test_server_gone_for_good_fails_clearly_and_writes_no_final_row(pg: Cluster) -> None:
    from mlcost.measure.options import TrainOptions, TrainShape
    from mlcost.measure.train import run_training
    from mlcost.spec import ModelSpec

    url = pg.create_database()
    spec = ModelSpec(
        name="gpt2-outage",
        n_layers=1,
        d_model=32,
        n_heads=2,
        d_ff=128,
        vocab_size=256,
        max_seq_len=16,
        mlp="gelu",
        norm="layernorm",
        position="learned",
        tied_embeddings=True,
    )
    opts = TrainOptions(shape=TrainShape(micro_batch=1, seq_len=16), steps=12, warmup=0, checkpoint_every=5)
    led = Ledger(url, persistent=True)
    led.reconnect_s = 1.0  # retry window (30 s by default), short for the test
    stopped = threading.Event()

    def progress(done: int, _total: int) -> None:
        if done == 6 and not stopped.is_set():  # after the first heartbeat (step 5) was written
            pg.stop()
            stopped.set()

    try:
        with pytest.raises(LedgerError) as err:
            run_training(spec, opts, ledger=led, progress=progress)
    finally:
        if stopped.is_set():
            pg.start()
    message = str(err.value)
    assert "ended completed" in message and "final record was not written" in message
    assert "cannot reach the ledger database" in message and "mark-stale" in (err.value.hint or "")
    assert "\n" not in message
    with Ledger(url, read_only=True) as again:
        (rec,) = again.list_runs()
    # The row is as the last successful write left it: running, the step-5 heartbeat, no final figures.
    assert rec.status == "running" and rec.finished_at is None
    assert rec.metrics["steps_done"] == 5 and "energy_j" not in rec.metrics
