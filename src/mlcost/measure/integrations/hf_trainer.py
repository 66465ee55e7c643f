"""A ``transformers.TrainerCallback`` that records a Hugging Face ``Trainer`` run in the mlcost ledger, as
the same :class:`~mlcost.measure.record.RunRecord` that ``mlcost measure train`` writes::

    from mlcost.measure.integrations.hf_trainer import MlcostCallback
    cb = MlcostCallback(model_name="my-gpt2")
    trainer = Trainer(..., callbacks=[cb])
    with cb.guard():          # optional: records failed / oom / interrupted if training raises
        trainer.train()
    cb.record                 # the RunRecord

Step times come from ``on_step_begin``/``on_step_end`` (one optimizer step, all accumulation micro-batches);
tokens are counted from the ``input_ids`` shape of every forward in training mode (a forward pre-hook).
A NaN/inf logged loss stops training and records ``diverged``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

from mlcost.errors import require
from mlcost.measure.integrations.common import RunTracker, tokens_in

_transformers = require("transformers", "MlcostCallback", extra="hf")


def _strategy_of(args: Any) -> tuple[str, str]:
    levers = []
    precision = "fp32"
    if getattr(args, "bf16", False):
        levers.append("bf16")
        precision = "bf16"
    elif getattr(args, "fp16", False):
        levers.append("fp16")
        precision = "fp16"
    if getattr(args, "torch_compile", False):
        levers.append("compile")
    if getattr(args, "gradient_checkpointing", False):
        levers.append("checkpointing")
    accum = int(getattr(args, "gradient_accumulation_steps", 1) or 1)
    if accum > 1:
        levers.append(f"grad-accum={accum}")
    optim = str(getattr(args, "optim", ""))
    if "fused" in optim:
        levers.append("fused")
    workers = int(getattr(args, "dataloader_num_workers", 0) or 0)
    if workers:
        levers.append(f"workers={workers}")
    if getattr(args, "world_size", 1) > 1:
        levers.append("fsdp" if getattr(args, "fsdp", None) else "ddp")
    return "+".join(levers) or "baseline", precision


class MlcostCallback(_transformers.TrainerCallback):  # type: ignore[misc,name-defined]
    """Records the Trainer's run (rank 0 writes the ledger).

    Args:
        ledger: a :class:`~mlcost.measure.ledger.Ledger`, or None to only keep the record in ``.record``.
        model_name: label of the model in the ledger (default: the model config's name or type).
        meters: a MeterSet (default: ``select_meters`` for the Trainer's device).
        warmup_steps: first optimizer steps excluded from timings.
        checkpoint_every: write partial metrics every this many steps.
        price_usd_per_device_h / carbon_kg_per_kwh / pue: cost inputs (labelled defaults otherwise).
    """

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
        self._hook: Any = None
        self._diverged = False

    @property
    def record(self) -> Any:
        return self.tracker.record if self.tracker is not None else None

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        strategy, precision = _strategy_of(args)
        device = str(getattr(args, "device", "cpu"))
        device = "cuda" if device.startswith("cuda") else "cpu"
        config = {
            "framework": f"transformers {_transformers.__version__} Trainer",
            "per_device_train_batch_size": args.per_device_train_batch_size,
            "gradient_accumulation_steps": args.gradient_accumulation_steps,
            "max_steps": state.max_steps,
            "learning_rate": args.learning_rate,
        }
        self.tracker = RunTracker(
            device=device,
            strategy=strategy,
            precision=precision,
            world_size=int(getattr(args, "world_size", 1) or 1),
            is_main=bool(state.is_world_process_zero),
            config=config,
            **self._kwargs,
        )
        self.tracker.start(model)
        if model is not None:
            tracker = self.tracker

            def _count(module: Any, args_: tuple[Any, ...], kwargs_: dict[str, Any]) -> None:
                if module.training:
                    tracker.add_tokens(tokens_in(kwargs_.get("input_ids", args_[0] if args_ else None)))

            self._hook = model.register_forward_pre_hook(_count, with_kwargs=True)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.tracker is not None:
            self.tracker.step_begin()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.tracker is not None:
            self.tracker.step_end()

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        loss = (logs or {}).get("loss")
        if self.tracker is not None and isinstance(loss, (int, float)):
            self.tracker.loss_last = float(loss)
            if not math.isfinite(loss):
                self._diverged = True
                control.should_training_stop = True

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if self.tracker is not None:
            if self._diverged:
                self.tracker.finish(
                    "diverged", f"loss became {self.tracker.loss_last} by step {state.global_step}"
                )
            else:
                self.tracker.finish("completed")

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """``with cb.guard(): trainer.train()``: an exception finishes the run as failed/oom/interrupted."""
        try:
            yield
        except BaseException as exc:
            if self._hook is not None:
                self._hook.remove()
                self._hook = None
            if self.tracker is not None:
                self.tracker.fail(exc)
            raise
