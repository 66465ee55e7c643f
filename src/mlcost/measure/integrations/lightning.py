"""A Lightning ``Callback`` that records a ``Trainer.fit`` run in the mlcost ledger, as the same
:class:`~mlcost.measure.record.RunRecord` that ``mlcost measure train`` writes::

    from mlcost.measure.integrations.lightning import MlcostLightningCallback
    trainer = lightning.pytorch.Trainer(callbacks=[MlcostLightningCallback(model_name="my-model")])

Works with ``lightning`` (``lightning.pytorch``) or the older ``pytorch_lightning`` package; importing this
module is the only thing that imports either. Each training batch is one timed step; tokens come from the
batch (``input_ids`` of a dict, the first tensor of a tuple, or the tensor). Exceptions finish the run as
failed / oom / interrupted (``on_exception``); a NaN/inf loss stops training as ``diverged``.
"""

from __future__ import annotations

from typing import Any

from mlcost.errors import MissingDependencyError
from mlcost.measure.integrations.common import RunTracker, tokens_in

try:
    import lightning.pytorch as _pl
except ImportError:  # pragma: no cover - depends on what is installed
    try:
        import pytorch_lightning as _pl  # type: ignore[no-redef]
    except ImportError as exc:
        raise MissingDependencyError("lightning", "MlcostLightningCallback") from exc


def _loss_of(outputs: Any) -> float | None:
    loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
    if loss is None:
        return None
    try:
        return float(loss.detach().float().item()) if hasattr(loss, "detach") else float(loss)
    except (TypeError, ValueError, RuntimeError):
        return None


class MlcostLightningCallback(_pl.Callback):  # type: ignore[misc,name-defined]
    """Records the fit (global rank 0 writes the ledger). Arguments as
    :class:`~mlcost.measure.integrations.hf_trainer.MlcostCallback`."""

    def __init__(
        self,
        ledger: Any = None,
        model_name: str | None = None,
        *,
        meters: Any = None,
        warmup_steps: int = 1,
        checkpoint_every: int = 5,
        price_usd_per_device_h: float | None = None,
        carbon_kg_per_kwh: float | None = None,
        pue: float | None = None,
    ) -> None:
        super().__init__()
        self._kwargs = {
            "ledger": ledger,
            "model_name": model_name,
            "meters": meters,
            "warmup_steps": warmup_steps,
            "checkpoint_every": checkpoint_every,
            "price_usd_per_device_h": price_usd_per_device_h,
            "carbon_kg_per_kwh": carbon_kg_per_kwh,
            "pue": pue,
        }
        self.tracker: RunTracker | None = None

    @property
    def record(self) -> Any:
        return self.tracker.record if self.tracker is not None else None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        device = "cuda" if str(pl_module.device).startswith("cuda") else "cpu"
        precision = str(getattr(trainer, "precision", "32"))
        prec = "bf16" if "bf16" in precision else "fp16" if "16" in precision else "fp32"
        levers = [prec] if prec != "fp32" else []
        accum = int(getattr(trainer, "accumulate_grad_batches", 1) or 1)
        if accum > 1:
            levers.append(f"grad-accum={accum}")
        world = int(getattr(trainer, "world_size", 1) or 1)
        if world > 1:
            levers.append("ddp")
        self.tracker = RunTracker(
            device=device,
            strategy="+".join(levers) or "baseline",
            precision=prec,
            world_size=world,
            is_main=bool(trainer.is_global_zero),
            config={
                "framework": f"lightning {getattr(_pl, '__version__', '?')}",
                "max_steps": trainer.max_steps,
            },
            **self._kwargs,
        )
        self.tracker.start(pl_module)

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self.tracker is not None:
            self.tracker.step_begin()
            self.tracker.add_tokens(tokens_in(batch))

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.tracker is not None and not self.tracker.step_end(_loss_of(outputs)):
            trainer.should_stop = True
            self.tracker.finish("diverged", f"loss became {self.tracker.loss_last} at batch {batch_idx}")

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.tracker is not None:
            self.tracker.finish("completed")

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self.tracker is not None:
            self.tracker.fail(exception)
