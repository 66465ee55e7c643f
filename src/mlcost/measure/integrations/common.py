"""What the framework callbacks share: a :class:`CallbackRun` that drives the one lifecycle
(:class:`~mlcost.measure.lifecycle.RunLifecycle`) and the one step loop
(:class:`~mlcost.measure.steps.StepLoop`) from the framework's hooks, and writes the same
:class:`~mlcost.measure.record.RunRecord` as ``mlcost measure train``.

* A step is one **optimizer** step; forwards in training mode are counted apart (``micro_batches_done``).
* The ledger is the default one (``MLCOST_LEDGER``, else the user data dir) unless another is given;
  ``ledger=False`` keeps the record in memory only.
* The row is opened at the first optimizer step, when the micro-batch shape is known: it carries the
  estimator's ``predicted`` block for the module (its :class:`~mlcost.spec.ModelSpec` and that shape).
* Facts (catalog, calibration) are the :class:`~mlcost.measure.options.RunFacts` given, else the package
  catalog with no calibration (the callbacks live below the application edge and never fetch the user's
  catalog: pass ``catalog=mlcost.context.default_catalog()`` or a whole ``facts=RunFacts(...)``).
* At the end of a completed run the module's FLOPs of one micro-batch are counted exactly
  (``FlopCounterMode``, one forward+backward) for achieved FLOP/s and MFU — never 6·N·D.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from mlcost.catalog.protocol import CatalogLike
from mlcost.measure.options import CHECKPOINT_EVERY_STEPS, CostOptions, RunFacts, TrainShape, facts_or_builtin
from mlcost.measure.steps import StepLoop, StepOutput, flops_metrics

#: Figures pushed into the trainer's own logs (prefixed ``mlcost/``), so its loggers see them.
LOGGED_KEYS: tuple[str, ...] = ("step_time_s", "tokens_per_s", "peak_memory_bytes")
FINAL_LOGGED_KEYS: tuple[str, ...] = (
    "step_time_s",
    "step_time_cv",
    "tokens_per_s",
    "achieved_flops_per_s",
    "mfu",
    "peak_memory_bytes",
    "energy_j",
    "cost_usd",
    "co2_kg",
)


def tokens_in(batch: Any) -> int:
    """Tokens in a batch: ``input_ids`` of a dict/BatchEncoding, the first tensor of a tuple/list, or a
    2-D tensor itself (numel). 0 if none is found."""
    ids = ids_in(batch)
    return int(ids.numel()) if ids is not None else 0


def ids_in(batch: Any) -> Any:
    """The token-id tensor of a batch (see :func:`tokens_in`), or None."""
    if batch is None:
        return None
    if hasattr(batch, "get") and not hasattr(batch, "numel"):
        ids = batch.get("input_ids")
        if ids is None:
            ids = next((v for v in batch.values() if hasattr(v, "numel")), None)
        return ids
    if isinstance(batch, (tuple, list)) and batch:
        return ids_in(batch[0])
    return batch if hasattr(batch, "numel") else None


def default_ledger(ledger: Any) -> Any:
    """None → the default ledger (``MLCOST_LEDGER`` or the user data dir); False → no ledger."""
    if ledger is False:
        return None
    if ledger is None:
        from mlcost.measure.ledger import Ledger

        return Ledger()
    return ledger


def callback_facts(facts: RunFacts | None, catalog: CatalogLike | None) -> RunFacts:
    """The facts of a callback: ``facts`` if given, else ``catalog`` with no calibration, else the package
    catalog. Giving both is an error (which catalog would win?)."""
    if facts is not None and catalog is not None:
        raise ValueError("give facts= or catalog=, not both (facts carries its own catalog)")
    if catalog is not None:
        return RunFacts(catalog)
    return facts_or_builtin(facts)


def hf_module_in(model: Any) -> Any:
    """The ``transformers`` model inside ``model`` (itself, or its first submodule with a config)."""
    from mlcost.measure.torch_models import is_hf_model

    if is_hf_model(model):
        return model
    for module in getattr(model, "modules", lambda: [])():
        if is_hf_model(module):
            return module
    return None


class CallbackRun:
    """One framework-driven run. The callbacks call :meth:`start`, :meth:`micro_batch`,
    :meth:`step_begin`, :meth:`step_end` and :meth:`finish` / :meth:`fail`."""

    def __init__(
        self,
        *,
        ledger: Any = None,
        model_name: str | None = None,
        device: str = "cpu",
        strategy: str = "baseline",
        precision: str = "fp32",
        world_size: int = 1,
        is_main: bool = True,
        config: dict[str, Any] | None = None,
        meters: Any = None,
        warmup_steps: int = 1,
        checkpoint_every: int = CHECKPOINT_EVERY_STEPS,
        cost: CostOptions | None = None,
        max_steps: int | None = None,
        count_flops: bool = True,
        facts: RunFacts | None = None,
    ) -> None:
        self.facts = facts_or_builtin(facts)
        self.settings = {
            "ledger": default_ledger(ledger) if is_main else None,
            "meters": meters,
            "cost": cost or CostOptions(),
            "facts": self.facts,
            "is_main": is_main,
        }
        self.model_name = model_name
        self.device, self.strategy, self.precision = device, strategy, precision
        self.world_size = world_size
        self.config = dict(config or {})
        self.warmup_steps, self.checkpoint_every = warmup_steps, checkpoint_every
        self.max_steps, self.count_flops = max_steps, count_flops
        self.run: Any = None
        self.loop: StepLoop | None = None
        self.model: Any = None
        self.micro_shape: tuple[int, int] | None = None
        self._step_tokens = 0
        self._step_micro = 0

    # ---- start ----------------------------------------------------------------------------------------
    def start(self, model: Any = None) -> None:
        from mlcost.measure.lifecycle import RunLifecycle
        from mlcost.measure.provenance import collect_provenance
        from mlcost.measure.record import RunRecord
        from mlcost.measure.torch_models import param_count

        self.model = model
        record = RunRecord(
            kind="train",
            model=self._name(model),
            config={**self.config, "precision": self.precision, "source": "callback"},
            strategy=self.strategy,
            device=self.device,
            world_size=self.world_size,
            provenance=collect_provenance(import_torch=True),
        )
        self.run = RunLifecycle(record, **self.settings)
        self.loop = StepLoop(self.run, warmup=self.warmup_steps, checkpoint_every=self.checkpoint_every)
        if model is not None:
            self.run.partial["param_count"] = param_count(model)

    def _name(self, model: Any) -> str:
        if self.model_name:
            return self.model_name
        cfg = getattr(hf_module_in(model), "config", None) if model is not None else None
        name = getattr(cfg, "name_or_path", None) or getattr(cfg, "model_type", None)
        return str(name or (type(model).__name__ if model is not None else "model"))

    # ---- steps ----------------------------------------------------------------------------------------
    def micro_batch(self, ids: Any) -> None:
        """A forward in training mode on ``ids`` (batch × sequence token ids)."""
        if ids is None or not hasattr(ids, "shape"):
            return
        self._step_tokens += int(ids.numel())
        self._step_micro += 1
        if self.micro_shape is None and len(ids.shape) == 2:
            self.micro_shape = (int(ids.shape[0]), int(ids.shape[1]))

    def step_begin(self) -> None:
        if self.loop is not None:
            self.loop.begin()

    def step_end(self, loss: float | None = None) -> bool:
        """Close one optimizer step; False when the loss is NaN/inf."""
        if self.loop is None:
            return True
        out = StepOutput(loss=loss, tokens=self._step_tokens, micro_batches=max(self._step_micro, 1))
        self._step_tokens = self._step_micro = 0
        ok = self.loop.end(out)
        if not self.run.opened:
            self.run.open(predicted=self._predicted())
        return ok

    def note_loss(self, loss: float) -> None:
        """A loss the trainer logged (HF logs every ``logging_steps``)."""
        if self.loop is not None:
            self.loop.losses.append(float(loss))

    def _micro_per_step(self) -> float:
        loop = self.loop
        return loop.micro_batches_done / loop.steps_done if loop is not None and loop.steps_done else 1.0

    def _predicted(self) -> dict[str, Any]:
        from mlcost.measure.facts import predict_train
        from mlcost.spec import ModelSpec

        hf = hf_module_in(self.model)
        if hf is None or self.micro_shape is None:
            return {"error": "no transformers model or token batch to predict from"}
        try:
            spec = ModelSpec.from_torch_module(hf)
        except Exception as exc:
            return {"error": f"no ModelSpec for this module: {exc}"}
        b, s = self.micro_shape
        micro = round(self._micro_per_step())
        shape = TrainShape(
            micro_batch=b, global_batch=b * micro * self.world_size, seq_len=s, precision=self.precision
        )
        steps = self.max_steps if self.max_steps and self.max_steps > 0 else 1
        return predict_train(spec, shape, self.device, self.world_size, self.precision, steps, self.facts)

    # ---- figures --------------------------------------------------------------------------------------
    def log_figures(
        self, keys: tuple[str, ...] = LOGGED_KEYS, metrics: dict[str, Any] | None = None
    ) -> dict[str, float]:
        """``{"mlcost/<key>": value}`` of the numeric figures so far (or of ``metrics``)."""
        if metrics is None:
            metrics = self.loop.partial_metrics(energy=False) if self.loop is not None else {}
        return {
            f"mlcost/{k}": float(metrics[k])
            for k in keys
            if isinstance(metrics.get(k), (int, float)) and not isinstance(metrics.get(k), bool)
        }

    def _flops(self, summary: dict[str, Any]) -> dict[str, Any]:
        """Exact FLOPs of one micro-batch of the module (FlopCounterMode) × micro-batches per step."""
        from mlcost.measure.torch_models import count_model_flops

        target = hf_module_in(self.model) or self.model
        if not self.count_flops or target is None or self.micro_shape is None:
            reason = "FLOPs not counted (no module or token batch seen, or count_flops=False)"
            return {"mfu": None, "mfu_unavailable_reason": reason, "model_flops_source": reason}
        try:
            flops = count_model_flops(target, *self.micro_shape)["total_flops"]
        except Exception as exc:  # a module that cannot be called on token ids alone
            reason = f"FLOPs not counted: {type(exc).__name__}: {exc}"
            return {"mfu": None, "mfu_unavailable_reason": reason, "model_flops_source": reason}
        per_step = float(flops) * self._micro_per_step() * self.world_size
        source = (
            "torch.utils.flop_counter.FlopCounterMode, one forward+backward of the module per micro-batch"
        )
        return flops_metrics(
            summary,
            model_flops_per_step=per_step,
            hardware_flops_per_step=None,
            source=source,
            device=self.device,
            precision=self.precision,
            world_size=self.world_size,
            facts=self.facts,
        )

    # ---- end ------------------------------------------------------------------------------------------
    def finish(self, status: str, error: str | None = None) -> Any:
        """Write the final record; idempotent (the first call wins)."""
        if self.run is None or self.loop is None or self.run.finished:
            return self.record
        try:
            metrics = self.loop.summary() if self.loop.meters.timer.times_s() else self.loop.partial_metrics()
            if status == "completed":
                metrics.update(self._flops(metrics))
        except Exception as exc:  # never lose the status because a meter failed
            metrics = {**self.loop.counters(), "partial_metrics_error": repr(exc)}
        if not self.run.opened:
            self.run.open(predicted=self._predicted())
        return self.run.finish(status, metrics, error)

    def fail(self, exc: BaseException) -> Any:
        """Finish as failed / oom / interrupted according to the exception."""
        from mlcost.measure.lifecycle import classify_exception

        if self.run is None or self.run.finished:
            return self.record
        return self.finish(classify_exception(exc), f"{type(exc).__name__}: {exc}")

    @property
    def record(self) -> Any:
        return self.run.record if self.run is not None else None

    @property
    def steps_done(self) -> int:
        return self.loop.steps_done if self.loop is not None else 0

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """``with run.guard(): trainer.train()``: signals and exceptions finish the run, then propagate."""
        from mlcost.measure.lifecycle import interrupt_signals

        try:
            with interrupt_signals():
                yield
        except BaseException as exc:
            self.fail(exc)
            raise
