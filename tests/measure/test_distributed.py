"""A real 2-process DDP run under torchrun (gloo on CPU) records ONE run with world size 2."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from mlcost.measure.distributed import DistContext, all_reduce, all_reduce_list, env_world
from mlcost.measure.ledger import Ledger


def test_single_process_reductions_are_identity(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert env_world()[0] == 1
    ctx = DistContext()
    assert all_reduce(3.0, "sum", ctx) == 3.0
    assert all_reduce_list([1.0, 2.0], "max", ctx) == [1.0, 2.0]


def test_torchrun_ddp_records_one_run(tmp_path):
    db = tmp_path / "runs.db"
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["TRANSFORMERS_VERBOSITY"] = "error"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "mlcost",
        "measure",
        "train",
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
        "--steps",
        "3",
        "--warmup",
        "1",
        "--strategy",
        "ddp",
        "--ledger",
        str(db),
        "--json",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1  # only rank 0 prints
    out = json.loads(lines[0])
    runs = Ledger(str(db)).list_runs()
    assert len(runs) == 1  # only rank 0 writes the ledger
    rec = runs[0]
    assert rec.status == "completed" and rec.world_size == 2 and out["world_size"] == 2
    m = rec.metrics
    assert m["tokens_per_step"] == 2 * 2 * 32  # summed over ranks
    assert math.isclose(m["tokens_per_s"], m["tokens_per_step"] / m["step_time_s"], rel_tol=1e-9)
    assert math.isclose(m["tokens_per_s"], 2 * m["tokens_per_s_per_device"], rel_tol=1e-9)
    assert any("DistributedDataParallel (gloo)" in note for note in m["applied"])
    assert rec.config["global_batch"] == 4
