"""The Hugging Face Trainer callback records a real (tiny) Trainer run."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # the Trainer needs it

from mlcost.measure.data import SyntheticTokens  # noqa: E402
from mlcost.measure.integrations.hf_trainer import MlcostCallback  # noqa: E402
from mlcost.measure.ledger import Ledger  # noqa: E402


class _Tokens(torch.utils.data.Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, i):
        ids = SyntheticTokens(256, 32)[i]
        return {"input_ids": ids, "labels": ids}


def _trainer(tmp_path, cb, **args):
    model = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=256, n_positions=64)
    )
    targs = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=5,
        per_device_train_batch_size=4,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        **args,
    )
    return transformers.Trainer(model=model, args=targs, train_dataset=_Tokens(), callbacks=[cb])


def test_trainer_run_is_recorded(tmp_path):
    ledger = Ledger(str(tmp_path / "runs.db"))
    cb = MlcostCallback(ledger, model_name="tiny-gpt2", checkpoint_every=2)
    trainer = _trainer(tmp_path, cb, gradient_accumulation_steps=2)
    with cb.guard():
        trainer.train()
    rec = ledger.get(cb.record.run_id)
    assert rec.status == "completed" and rec.model == "tiny-gpt2" and rec.strategy == "grad-accum=2"
    m = rec.metrics
    assert m["steps_done"] == 5 and m["steps_measured"] == 4
    assert m["tokens_per_step"] == 4 * 32 * 2  # micro-batch × seq × accumulation
    assert m["tokens_per_s"] > 0 and m["step_time_s"] > 0
    assert m["energy_source"] in ("rapl", "estimated", "nvml") and m["co2_kg"] >= 0


def test_exception_in_training_is_recorded(tmp_path):
    ledger = Ledger(str(tmp_path / "runs.db"))
    cb = MlcostCallback(ledger)
    trainer = _trainer(tmp_path, cb)

    def boom(*a, **k):
        raise MemoryError("simulated")

    trainer.model.register_forward_pre_hook(lambda *a: boom() if cb.tracker.steps_done >= 2 else None)
    with pytest.raises(MemoryError), cb.guard():
        trainer.train()
    assert ledger.get(cb.record.run_id).status == "oom"
