"""A Lightning ``Callback`` that records a ``Trainer.fit`` run in the mlcost ledger, as the same
:class:`~mlcost.measure.record.RunRecord` that ``mlcost measure train`` writes::

    from mlcost.measure.integrations.lightning import MlcostLightningCallback
    trainer = lightning.pytorch.Trainer(callbacks=[MlcostLightningCallback(model_name="my-model")])

Works with ``lightning`` (``lightning.pytorch``) or the older ``pytorch_lightning`` package; importing this
module is the only thing that imports either. A step is one **optimizer** step (``trainer.global_step``
moved), not a batch: with ``accumulate_grad_batches=N`` a step spans N batches (``micro_batches_done``).
The loss recorded is the one the module logged (``loss``, ``train_loss``, ``train/loss``, with or without
``_step``) or, if it logged none, the mean of the batches' losses as ``training_step`` returned them (not
Lightning's loss divided by N). Figures go to the trainer's loggers as ``mlcost/...`` via
``pl_module.log`` at each step and ``logger.log_metrics`` at the end. Exceptions finish the run as
failed / oom / interrupted (``on_exception``); a NaN/inf loss stops training as ``diverged``.
"""

from __future__ import annotations

from typing import Any

from mlcost.catalog.protocol import CatalogLike
from mlcost.errors import MissingDependencyError
from mlcost.measure.integrations.common import FINAL_LOGGED_KEYS, CallbackRun, callback_facts, ids_in
from mlcost.measure.options import CostOptions, RunFacts

try:
    import lightning.pytorch as _pl
except ImportError:  # pragma: no cover - depends on what is installed
    try:
        import pytorch_lightning as _pl  # type: ignore[no-redef]
    except ImportError as exc:
        raise MissingDependencyError("lightning", "MlcostLightningCallback") from exc

#: Names of a logged training loss, in order of preference.
LOSS_NAMES: tuple[str, ...] = ("train_loss", "train/loss", "loss", "train_loss_step", "loss_step")


def _loss_of(outputs: Any) -> float | None:
    loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
    if loss is None:
        return None
    try:
        return float(loss.detach().float().item()) if hasattr(loss, "detach") else float(loss)
    except (TypeError, ValueError, RuntimeError):
        return None


def _logged_loss(trainer: Any) -> float | None:
    metrics = getattr(trainer, "callback_metrics", {}) or {}
    for name in LOSS_NAMES:
        if name in metrics:
            return _loss_of(metrics[name])
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
        count_flops: bool = True,
        catalog: CatalogLike | None = None,
        facts: RunFacts | None = None,
    ) -> None:
        super().__init__()
        self._kwargs = {
            "ledger": ledger,
            "model_name": model_name,
            "meters": meters,
            "warmup_steps": warmup_steps,
            "checkpoint_every": checkpoint_every,
            "cost": CostOptions(
                price_usd_per_device_h=price_usd_per_device_h, pue=pue, carbon_kg_per_kwh=carbon_kg_per_kwh
            ),
            "count_flops": count_flops,
            "facts": callback_facts(facts, catalog),
        }
        self.tracker: CallbackRun | None = None
        self._accum = 1
        self._global_step = 0
        self._micro_losses: list[float] = []

    @property
    def record(self) -> Any:
        return self.tracker.record if self.tracker is not None else None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        device = "cuda" if str(pl_module.device).startswith("cuda") else "cpu"
        precision = str(getattr(trainer, "precision", "32"))
        prec = "bf16" if "bf16" in precision else "fp16" if "16" in precision else "fp32"
        levers = [prec] if prec != "fp32" else []
        self._accum = int(getattr(trainer, "accumulate_grad_batches", 1) or 1)
        if self._accum > 1:
            levers.append(f"grad-accum={self._accum}")
        world = int(getattr(trainer, "world_size", 1) or 1)
        if world > 1:
            levers.append("ddp")
        self._global_step = int(trainer.global_step)
        self.tracker = CallbackRun(
            device=device,
            strategy="+".join(levers) or "baseline",
            precision=prec,
            world_size=world,
            is_main=bool(trainer.is_global_zero),
            config={
                "framework": f"lightning {getattr(_pl, '__version__', '?')}",
                "max_steps": trainer.max_steps,
                "accumulate_grad_batches": self._accum,
            },
            max_steps=trainer.max_steps,
            **self._kwargs,
        )
        self.tracker.start(pl_module)

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        if self.tracker is not None:
            self.tracker.step_begin()
            self.tracker.micro_batch(ids_in(batch))

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.tracker is None:
            return
        micro = _loss_of(outputs)
        if micro is not None:  # Lightning divides the returned loss by accumulate_grad_batches
            self._micro_losses.append(micro * self._accum)
        if int(trainer.global_step) == self._global_step:
            return  # still accumulating: the optimizer has not stepped
        self._global_step = int(trainer.global_step)
        logged = _logged_loss(trainer)
        loss = logged if logged is not None else _mean(self._micro_losses)
        self._micro_losses = []
        if not self.tracker.step_end(loss):
            trainer.should_stop = True
            self.tracker.finish("diverged", f"loss became {loss} at step {self._global_step}")
            return
        figures = self.tracker.log_figures()
        if figures:
            pl_module.log_dict(
                figures,
                on_step=True,
                on_epoch=False,
                logger=bool(getattr(trainer, "loggers", None)),
                prog_bar=False,
            )

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.tracker is None:
            return
        record = self.tracker.finish("completed")
        final = self.tracker.log_figures(FINAL_LOGGED_KEYS, record.metrics)
        for logger in getattr(trainer, "loggers", None) or []:
            logger.log_metrics(final, step=int(trainer.global_step))

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self.tracker is not None:
            self.tracker.fail(exception)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
