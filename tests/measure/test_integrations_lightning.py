"""The Lightning callback records a real (tiny GPT-2) fit with accumulate_grad_batches=4 in the default
ledger: optimizer steps (not batches), the loss the module logged (not divided by 4), a predicted block,
figures in the trainer's logs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pl = pytest.importorskip("lightning.pytorch")

from mlcost.measure.integrations.lightning import MlcostLightningCallback  # noqa: E402
from mlcost.measure.ledger import Ledger  # noqa: E402
from tests.measure.test_integrations_hf import _shows_in_mlcost_runs  # noqa: E402

ACCUM, MICRO, SEQ, STEPS = 4, 2, 32, 4


class _GPT2(pl.LightningModule):
    def __init__(self, log_loss: bool = True):
        super().__init__()
        self.model = transformers.GPT2LMHeadModel(
            transformers.GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=256, n_positions=64)
        )
        self.log_loss = log_loss
        self.micro_losses: list[float] = []

    def training_step(self, batch, batch_idx):
        (ids,) = batch
        loss = self.model(input_ids=ids, labels=ids).loss
        self.micro_losses.append(float(loss.detach()))
        if self.log_loss:
            self.log("train_loss", loss, on_step=True, on_epoch=False)
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-3)


def _fit(tmp_path, cb, module, logger=False):
    data = torch.utils.data.TensorDataset(torch.randint(0, 256, (MICRO * ACCUM * STEPS * 2, SEQ)))
    trainer = pl.Trainer(
        max_steps=STEPS,
        accumulate_grad_batches=ACCUM,
        callbacks=[cb],
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=str(tmp_path),
    )
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=MICRO))
    return trainer


def test_fit_with_accumulation_is_recorded(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'default.db'}"
    monkeypatch.setenv("MLCOST_LEDGER", url)
    cb = MlcostLightningCallback(model_name="tiny-gpt2-pl")  # no ledger given: the default one
    module = _GPT2()
    csv = pl.loggers.CSVLogger(str(tmp_path / "logs"), name="run")
    trainer = _fit(tmp_path, cb, module, logger=csv)
    rec = Ledger(url).get(cb.record.run_id)
    m = rec.metrics
    assert rec.status == "completed" and rec.strategy == f"grad-accum={ACCUM}"
    assert m["steps_done"] == STEPS == trainer.global_step and m["micro_batches_done"] == STEPS * ACCUM
    assert m["tokens_per_step"] == MICRO * SEQ * ACCUM
    # The loss the module logged, not Lightning's loss / accumulate_grad_batches.
    logged = float(trainer.callback_metrics["train_loss"])
    assert math.isclose(m["loss_last"], logged, rel_tol=1e-6)
    assert math.isclose(m["loss_last"], module.micro_losses[-1], rel_tol=1e-6)
    assert m["loss_last"] > 3.0  # ln(256) ≈ 5.5 at random init; a /4 loss would be ≈ 1.4
    assert m["model_flops_source"].startswith("torch.utils.flop_counter")
    assert rec.predicted["model_flops_per_step"] == pytest.approx(m["model_flops_per_step"], rel=0.1)
    # Figures in the trainer's own logger: per step via pl_module.log, the summary at the end.
    assert "mlcost/step_time_s" in trainer.logged_metrics
    logged_csv = (Path(csv.log_dir) / "metrics.csv").read_text()
    assert "mlcost/step_time_s" in logged_csv and "mlcost/energy_j" in logged_csv
    _shows_in_mlcost_runs(url, rec.run_id, "tiny-gpt2-pl")


def test_unlogged_loss_is_the_mean_of_the_step(tmp_path):
    cb = MlcostLightningCallback(Ledger(str(tmp_path / "r.db")), count_flops=False)
    module = _GPT2(log_loss=False)
    _fit(tmp_path, cb, module)
    m = cb.record.metrics
    assert math.isclose(m["loss_last"], sum(module.micro_losses[-ACCUM:]) / ACCUM, rel_tol=1e-5)
