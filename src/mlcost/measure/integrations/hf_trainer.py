"""A ``transformers.TrainerCallback`` that records a Hugging Face ``Trainer`` run in the mlcost ledger, as
the same :class:`~mlcost.measure.record.RunRecord` that ``mlcost measure train`` writes::

    from mlcost.measure.integrations.hf_trainer import MlcostCallback
    cb = MlcostCallback(model_name="my-gpt2")     # the default ledger (MLCOST_LEDGER), like report_to
    trainer = Trainer(...)
    cb.attach(trainer)        # first in line, so report_to loggers see its figures (or callbacks=[cb])
    with cb.guard():          # optional: Ctrl-C / SIGTERM / an exception finish the run, then propagate
        trainer.train()
    cb.record                 # the RunRecord; `mlcost runs` lists it

A step is one optimizer step (``on_step_begin``/``on_step_end``, all accumulation micro-batches); forwards
in training mode are counted apart (a forward pre-hook: tokens, micro-batches, the batch shape). The loss
is the one the Trainer logs (``on_log``). Every log gets ``mlcost/step_time_s``, ``mlcost/tokens_per_s``
and ``mlcost/peak_memory_bytes`` (so ``state.log_history`` and the reporting integrations that run
after this callback see them: :meth:`MlcostCallback.attach` puts it first); the final figures (MFU, energy, cost, CO2) are appended to
``state.log_history`` at the end. A NaN/inf logged loss stops training and records ``diverged``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

from mlcost.catalog.protocol import CatalogLike
from mlcost.errors import require
from mlcost.measure.integrations.common import FINAL_LOGGED_KEYS, CallbackRun, callback_facts, ids_in
from mlcost.measure.options import CostOptions, RunFacts

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
        ledger: a :class:`~mlcost.measure.ledger.Ledger`; None = the default ledger (``MLCOST_LEDGER``,
            else the user data dir); False = keep the record in ``.record`` only.
        model_name: label of the model in the ledger (default: the model config's name or type).
        meters: a MeterSet (default: ``select_meters`` for the Trainer's device).
        warmup_steps: first optimizer steps excluded from timings.
        checkpoint_every: write partial metrics every this many steps.
        price_usd_per_device_h / carbon_kg_per_kwh / pue: cost inputs (the catalog's otherwise, labelled).
        count_flops: count the module's FLOPs (FlopCounterMode) at the end for achieved FLOP/s and MFU.
        catalog: the catalog for the device row, MFU peak, price, PUE and carbon; None = the package
            catalog (pass ``mlcost.context.default_catalog()`` for yours, with ``$MLCOST_CATALOG``).
        facts: a whole :class:`~mlcost.measure.options.RunFacts` instead (catalog and this host's
            calibration, e.g. ``RunFacts(default_catalog(), mlcost.context.local_calibration())``).
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
        count_flops: bool = True,
        catalog: CatalogLike | None = None,
        facts: RunFacts | None = None,
    ) -> None:
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
        self._hook: Any = None
        self._diverged = False

    @property
    def record(self) -> Any:
        return self.tracker.record if self.tracker is not None else None

    def attach(self, trainer: Any) -> MlcostCallback:
        """Add this callback to ``trainer`` **first**, so that the ``report_to`` integrations (W&B,
        TensorBoard, MLflow), which the Trainer lists before the callbacks it is given, see the ``mlcost/``
        figures in every log. Returns self."""
        trainer.callback_handler.callbacks.insert(0, self)
        return self

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        strategy, precision = _strategy_of(args)
        device = "cuda" if str(getattr(args, "device", "cpu")).startswith("cuda") else "cpu"
        config = {
            "framework": f"transformers {_transformers.__version__} Trainer",
            "per_device_train_batch_size": args.per_device_train_batch_size,
            "gradient_accumulation_steps": args.gradient_accumulation_steps,
            "max_steps": state.max_steps,
            "learning_rate": args.learning_rate,
        }
        self.tracker = CallbackRun(
            device=device,
            strategy=strategy,
            precision=precision,
            world_size=int(getattr(args, "world_size", 1) or 1),
            is_main=bool(state.is_world_process_zero),
            config=config,
            max_steps=state.max_steps,
            **self._kwargs,
        )
        self.tracker.start(model)
        if model is not None:
            tracker = self.tracker

            def _count(module: Any, args_: tuple[Any, ...], kwargs_: dict[str, Any]) -> None:
                if module.training:
                    tracker.micro_batch(ids_in(kwargs_.get("input_ids", args_[0] if args_ else None)))

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
        if self.tracker is None or logs is None:
            return
        loss = logs.get("loss")
        if isinstance(loss, (int, float)):
            self.tracker.note_loss(float(loss))
            if not math.isfinite(loss):
                self._diverged = True
                control.should_training_stop = True
        figures = self.tracker.log_figures()
        logs.update(figures)
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update(figures)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._remove_hook()
        if self.tracker is None:
            return
        if self._diverged:
            loss = self.tracker.loop.loss_last if self.tracker.loop is not None else None
            record = self.tracker.finish("diverged", f"loss became {loss} by step {state.global_step}")
        else:
            record = self.tracker.finish("completed")
        final = self.tracker.log_figures(FINAL_LOGGED_KEYS, record.metrics)
        state.log_history.append({**final, "mlcost/run_id": record.run_id, "step": state.global_step})

    def _remove_hook(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """``with cb.guard(): trainer.train()``: Ctrl-C, SIGTERM or an exception finish the run as
        interrupted / oom / failed, then propagate."""
        from mlcost.measure.lifecycle import interrupt_signals

        try:
            with interrupt_signals():
                yield
        except BaseException as exc:
            self._remove_hook()
            if self.tracker is not None:
                self.tracker.fail(exc)
            raise
