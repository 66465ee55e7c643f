"""The Hugging Face Trainer callback records a real (tiny) Trainer run with gradient accumulation 4 in
the default ledger (MLCOST_LEDGER), with a predicted block, the Trainer's logged loss and optimizer steps."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # the Trainer needs it

from mlcost.measure.data import SyntheticTokens  # noqa: E402
from mlcost.measure.integrations.hf_trainer import MlcostCallback  # noqa: E402
from mlcost.measure.ledger import Ledger  # noqa: E402

ACCUM, MICRO, SEQ, STEPS = 4, 2, 32, 4


class _Tokens(torch.utils.data.Dataset):
    def __len__(self):
        return 256

    def __getitem__(self, i):
        ids = SyntheticTokens(256, SEQ)[i]
        return {"input_ids": ids, "labels": ids}


class _Reporter(transformers.TrainerCallback):
    """Stands in for a report_to integration (W&B, TensorBoard): keeps every log it is shown."""

    def __init__(self):
        self.seen = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        self.seen.append(dict(logs or {}))


def _trainer(tmp_path, cb, reporter=None, **args):
    model = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=256, n_positions=64)
    )
    targs = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=STEPS,
        per_device_train_batch_size=MICRO,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        **args,
    )
    if reporter is None:
        return transformers.Trainer(model=model, args=targs, train_dataset=_Tokens(), callbacks=[cb])
    trainer = transformers.Trainer(model=model, args=targs, train_dataset=_Tokens(), callbacks=[reporter])
    cb.attach(trainer)
    return trainer


@pytest.fixture
def default_ledger(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'default.db'}"
    monkeypatch.setenv("MLCOST_LEDGER", url)
    return url


def test_trainer_run_lands_in_default_ledger(tmp_path, default_ledger):
    cb = MlcostCallback(model_name="tiny-gpt2", checkpoint_every=2)  # no ledger given: the default one
    reporter = _Reporter()
    trainer = _trainer(tmp_path, cb, reporter, gradient_accumulation_steps=ACCUM)
    with cb.guard():
        trainer.train()
    rec = Ledger(default_ledger).get(cb.record.run_id)
    assert rec.status == "completed" and rec.model == "tiny-gpt2" and rec.strategy == f"grad-accum={ACCUM}"
    m = rec.metrics
    # Steps are optimizer steps; the micro-batches are counted apart.
    assert m["steps_done"] == STEPS == trainer.state.global_step and m["steps_measured"] == STEPS - 1
    assert m["micro_batches_done"] == STEPS * ACCUM
    assert m["tokens_per_step"] == MICRO * SEQ * ACCUM
    assert m["tokens_per_s"] > 0 and m["step_time_s"] > 0
    # The loss recorded is the one the Trainer logged last.
    logged = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(logged) == STEPS and math.isclose(m["loss_last"], logged[-1], rel_tol=1e-9)
    # Exact FLOPs counted on the module (not 6ND), and a predicted block from the estimator.
    assert m["model_flops_source"].startswith("torch.utils.flop_counter")
    six_nd = 6 * m["param_count"] * m["tokens_per_step"]
    assert m["model_flops_per_step"] > six_nd  # attention and the LM head add to 6ND at this size
    assert m["mfu"] is None or 0 < m["mfu"] <= 1
    assert rec.predicted.get("model_flops_per_step", 0) > 0 and rec.predicted.get("step_time_s", 0) > 0
    assert rec.predicted["model_flops_per_step"] == pytest.approx(m["model_flops_per_step"], rel=0.1)
    # Figures pushed into the Trainer's own logs.
    assert any("mlcost/step_time_s" in h for h in trainer.state.log_history)
    assert any("mlcost/step_time_s" in logs and "loss" in logs for logs in reporter.seen)
    assert trainer.state.log_history[-1]["mlcost/run_id"] == rec.run_id
    _shows_in_mlcost_runs(default_ledger, rec.run_id, "tiny-gpt2")


def _shows_in_mlcost_runs(url, run_id, model):
    from typer.testing import CliRunner

    from mlcost.cli.main import build_app

    out = CliRunner().invoke(build_app(), ["runs", "--ledger", url])
    assert out.exit_code == 0, out.output
    assert run_id[:8] in out.output and model in out.output
    shown = CliRunner().invoke(build_app(), ["runs", "show", run_id[:10], "--ledger", url])
    assert shown.exit_code == 0, shown.output


def test_exception_in_training_is_recorded(tmp_path):
    ledger = Ledger(str(tmp_path / "runs.db"))
    cb = MlcostCallback(ledger)
    trainer = _trainer(tmp_path, cb)

    def boom(*a, **k):
        raise MemoryError("simulated")

    trainer.model.register_forward_pre_hook(lambda *a: boom() if cb.tracker.steps_done >= 2 else None)
    with pytest.raises(MemoryError), cb.guard():
        trainer.train()
    rec = ledger.get(cb.record.run_id)
    assert rec.status == "oom" and rec.metrics["steps_done"] == 2
