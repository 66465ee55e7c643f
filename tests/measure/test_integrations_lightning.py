"""The Lightning callback records a fit (only where lightning is installed)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pl = pytest.importorskip("lightning.pytorch")

from mlcost.measure.integrations.lightning import MlcostLightningCallback  # noqa: E402
from mlcost.measure.ledger import Ledger  # noqa: E402


class _LM(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(64, 16)
        self.out = torch.nn.Linear(16, 64)

    def training_step(self, batch, batch_idx):
        (ids,) = batch
        logits = self.out(self.emb(ids))
        return torch.nn.functional.cross_entropy(logits.reshape(-1, 64), ids.reshape(-1))

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-3)


def test_fit_is_recorded(tmp_path):
    ledger = Ledger(str(tmp_path / "runs.db"))
    cb = MlcostLightningCallback(ledger, model_name="tiny-lm")
    data = torch.utils.data.TensorDataset(torch.randint(0, 64, (40, 16)))
    trainer = pl.Trainer(
        max_steps=5,
        callbacks=[cb],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        accelerator="cpu",
        default_root_dir=str(tmp_path),
    )
    trainer.fit(_LM(), torch.utils.data.DataLoader(data, batch_size=4))
    rec = ledger.get(cb.record.run_id)
    assert rec.status == "completed" and rec.metrics["steps_done"] == 5
    assert rec.metrics["tokens_per_s"] > 0 and rec.metrics["tokens_per_step"] == 4 * 16
