from __future__ import annotations

import math

import pytest

from mlcost.errors import SpecError
from mlcost.measure.runner import CostOptions, TrainShape, grad_accum_steps, run_summary, run_training
from mlcost.measure.strategies import parse_strategy
from tests.measure.test_runner_specs import TINY_GPT2, TINY_LLAMA


@pytest.fixture
def ledger(tmp_path):
    from mlcost.measure.ledger import Ledger

    return Ledger(f"sqlite:///{tmp_path / 'runs.db'}")


def test_grad_accum_from_shape():
    base, three = parse_strategy("baseline").grad_accum, parse_strategy("grad-accum=3").grad_accum
    assert grad_accum_steps(TrainShape(micro_batch=2, global_batch=8), base, 1) == 4
    assert grad_accum_steps(TrainShape(micro_batch=2, global_batch=8), base, 2) == 2
    assert grad_accum_steps(TrainShape(micro_batch=2), three, 1) == 3
    with pytest.raises(SpecError, match="--global-batch"):
        grad_accum_steps(TrainShape(micro_batch=3, global_batch=8), base, 1)


def test_dry_run_records_without_torch(tmp_path):
    code = (
        "import sys; from mlcost.measure.runner import run_training, TrainShape;"
        "from mlcost.measure.ledger import Ledger;"
        "from tests.measure.test_runner_specs import TINY_GPT2;"
        f"r = run_training(TINY_GPT2, TrainShape(micro_batch=2, seq_len=32), steps=3, warmup=1, dry_run=True,"
        f" ledger=Ledger({str(tmp_path / 'd.db')!r}));"
        "assert r.status == 'completed', r; assert r.metrics['steps_measured'] == 3;"
        "assert r.metrics['energy_source'] == 'replay'; assert r.config['dry_run'];"
        "assert 'torch' not in sys.modules, 'dry run imported torch'"
    )
    from tests.no_import import run_refusing

    proc = run_refusing(code)
    assert proc.returncode == 0, proc.stderr[-2000:]


def _repo_root():
    from pathlib import Path

    return Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("spec", [TINY_GPT2, TINY_LLAMA], ids=["gpt2", "llama"])
def test_tiny_models_train_and_record(spec, ledger):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    shape = TrainShape(micro_batch=2, seq_len=32)
    rec = run_training(spec, shape, steps=4, warmup=1, ledger=ledger, checkpoint_every=2)
    assert rec.status == "completed", rec.error
    stored = ledger.get(rec.run_id)
    assert stored.status == "completed" and stored.finished_at
    m = stored.metrics
    assert m["steps_done"] == 5 and m["steps_measured"] == 4
    assert m["tokens_per_step"] == 64
    assert m["step_time_s"] > 0 and m["step_time_p90_s"] >= m["step_time_s"] * 0.999
    assert math.isclose(m["tokens_per_s"], 64 / m["step_time_s"], rel_tol=1e-9)
    assert math.isclose(m["achieved_flops_per_s"], m["model_flops_per_step"] / m["step_time_s"], rel_tol=1e-9)
    assert m["model_flops_per_step"] > 6 * m["param_count"] * 64 * 0.5  # at least ~6N per token
    if m["mfu"] is not None:
        assert 0 < m["mfu"] < 1 and m["mfu_peak_source"]
    assert m["peak_memory_bytes"] > 0
    assert m["energy_j"] > 0 and m["energy_source"] in ("rapl", "estimated", "nvml")
    # Cost inputs come from the catalog via resolve_hardware: no price for a CPU row (cost unknown, not a
    # made-up 0), the catalog's default PUE and world carbon intensity.
    from mlcost.catalog import get_catalog

    cat = get_catalog()
    assert m["cost_usd"] is None and "price" in m["cost_source"]
    assert m["pue"] == cat.pue(None).pue and m["carbon_kg_per_kwh"] == cat.carbon().kg_co2_per_kwh
    assert math.isclose(m["co2_kg"], m["energy_j"] / 3.6e6 * m["pue"] * m["carbon_kg_per_kwh"], rel_tol=1e-9)
    assert math.isfinite(m["loss_last"])
    summary = run_summary(stored)
    for key in (
        "run_id",
        "status",
        "step_time_s",
        "tokens_per_s",
        "mfu",
        "energy_source",
        "cost_usd",
        "co2_kg",
    ):
        assert key in summary


def test_checkpointing_adds_hardware_flops(ledger):
    pytest.importorskip("transformers")
    rec = run_training(
        TINY_GPT2,
        TrainShape(micro_batch=2, seq_len=32),
        strategy="checkpointing+grad-accum=2",
        steps=2,
        warmup=0,
        ledger=ledger,
    )
    assert rec.status == "completed", rec.error
    m = rec.metrics
    assert m["tokens_per_step"] == 2 * 2 * 32
    assert m["hardware_flops_per_step"] > m["model_flops_per_step"]
    assert any("checkpointing" in note for note in m["applied"])


def test_user_price_gives_cost(ledger):
    pytest.importorskip("transformers")
    rec = run_training(
        TINY_GPT2,
        TrainShape(micro_batch=1, seq_len=16),
        steps=2,
        warmup=0,
        cost=CostOptions(price_usd_per_device_h=3.6, carbon_kg_per_kwh=0.5, pue=1.5),
    )
    m = rec.metrics
    assert math.isclose(m["cost_usd"], 3.6 * m["measured_s"] / 3600, rel_tol=1e-9)
    assert math.isclose(m["co2_kg"], m["energy_j"] / 3.6e6 * 1.5 * 0.5, rel_tol=1e-9)
    assert m["usd_per_million_tokens"] > 0


def _nan_module():
    torch = pytest.importorskip("torch")

    class NanLM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(64, 8)
            self.out = torch.nn.Linear(8, 64)
            self.calls = 0

        def forward(self, input_ids):
            self.calls += 1
            logits = self.out(self.emb(input_ids))
            return logits * float("nan") if self.calls > 3 else logits

    return NanLM()


def test_nan_loss_is_diverged(ledger):
    rec = run_training(_nan_module(), TrainShape(micro_batch=2, seq_len=8), steps=20, warmup=1, ledger=ledger)
    assert rec.status == "diverged"
    assert rec.metrics["steps_done"] < 21  # stopped at once
    assert "loss" in rec.error


def _raising_module(exc):
    torch = pytest.importorskip("torch")

    class Boom(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(64, 64)
            self.calls = 0

        def forward(self, input_ids):
            self.calls += 1
            if self.calls > 2:  # after the FLOP-count pass and one step
                raise exc
            return self.emb(input_ids)

    return Boom()


@pytest.mark.parametrize(
    ("exc", "status"),
    [(MemoryError("no room"), "oom"), (ValueError("bad"), "failed"), (KeyboardInterrupt(), "interrupted")],
)
def test_exceptions_map_to_statuses(exc, status, ledger):
    rec = run_training(
        _raising_module(exc), TrainShape(micro_batch=1, seq_len=8), steps=5, warmup=0, ledger=ledger
    )
    assert rec.status == status
    stored = ledger.get(rec.run_id)
    assert stored.status == status and stored.metrics["steps_done"] == 1


def test_too_big_model_fails_before_allocating():
    big = TINY_LLAMA.replace(name="huge", n_layers=200, d_model=8192, n_heads=64, n_kv_heads=8, d_ff=28672)
    with pytest.raises(SpecError, match="needs ~"):
        run_training(big, TrainShape(micro_batch=1, seq_len=128), steps=1)


def test_ddp_without_torchrun_is_refused():
    with pytest.raises(SpecError, match="torchrun"):
        run_training(TINY_GPT2, TrainShape(micro_batch=1, seq_len=8), strategy="ddp", steps=1)


def test_serving_measures_ttft_and_tokens(ledger):
    pytest.importorskip("transformers")
    from mlcost.measure.runner import ServeShape, run_serving

    rec = run_serving(
        TINY_LLAMA, ServeShape(prompt_len=8, output_len=4, batch=2), requests=2, warmup=1, ledger=ledger
    )
    assert rec.status == "completed", rec.error
    m = ledger.get(rec.run_id).metrics
    assert m["ttft_s"] > 0 and m["time_per_output_token_s"] > 0
    assert math.isclose(m["tokens_per_s"], 8 / m["request_time_s"], rel_tol=1e-9)
