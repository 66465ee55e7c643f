"""Fixtures for report tests: a ledger of real RunRecords and a real plan JSON."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from mlcost.cli.main import main

STRATEGIES = ("baseline", "bf16", "compile", "checkpoint")


def make_ledger(path: Path, n_runs: int, seed: int = 0) -> str:
    """A SQLite ledger with ``n_runs`` completed training runs written through the Ledger API: groups of
    four strategies on the same shape, each with measured metrics and the prediction stored with it."""
    from mlcost.measure.ledger import Ledger
    from mlcost.measure.record import RunRecord

    rng = random.Random(seed)
    url = f"sqlite:///{path}"
    led = Ledger(url)
    speed = {"baseline": 1.0, "bf16": 0.8, "compile": 0.7, "checkpoint": 1.3}
    mem = {"baseline": 1.0, "bf16": 0.7, "compile": 1.0, "checkpoint": 0.5}
    for i in range(n_runs):
        strategy = STRATEGIES[i % 4]
        layers = 2 + (i // 4) % 6
        pred_t = 0.02 * layers
        meas_t = pred_t * speed[strategy] * rng.uniform(0.85, 1.15)
        pred_m = 2e8 * layers
        rec = RunRecord(
            model="gpt2",
            strategy=strategy,
            device="cpu",
            config={"micro_batch": 2, "seq_len": 64, "layers": layers, "d_model": 64, "tags": ["fixture"]},
            predicted={"step_time_s": pred_t, "peak_memory_bytes": pred_m},
        )
        led.start_run(rec)
        led.finish_run(
            rec.run_id,
            "completed",
            metrics={
                "step_time_s": meas_t,
                "tokens_per_s": 128 / meas_t,
                "mfu": 0.2,
                "peak_memory_bytes": pred_m * mem[strategy] * rng.uniform(0.9, 1.1),
                "energy_j": 50 * meas_t,
                "energy_source": "estimated",
            },
        )
    led.close()
    return url


@pytest.fixture(scope="session")
def plan_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mlcost plan train --json`` for llama-3.1-8b on 1T tokens (the CLI's own output)."""
    out = tmp_path_factory.mktemp("plan") / "plan.json"
    cap = _run_cli(["plan", "train", "--model", "llama-3.1-8b", "--tokens", "1T", "--json"])
    out.write_text(cap)
    return out


def _run_cli(argv: list[str]) -> str:
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 0
    return buf.getvalue()


@pytest.fixture()
def run_cli() -> Any:
    return _run_cli


@pytest.fixture(scope="session")
def ledger_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_ledger(tmp_path_factory.mktemp("ledger") / "ledger.db", 12)


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]
