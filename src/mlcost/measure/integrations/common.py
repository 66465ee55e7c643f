"""What the framework callbacks share: a :class:`RunTracker` that times steps with the meters, counts
tokens, and writes the same :class:`~mlcost.measure.record.RunRecord` as ``mlcost measure train``.

Achieved FLOP/s in callbacks uses the 6 × parameters × tokens approximation (labelled), since the
framework owns the training step and mlcost does not run a FlopCounterMode pass there.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

from mlcost.measure.runner import (
    CHECKPOINT_EVERY_STEPS,
    as_meter_set,
    classify_exception,
    cost_inputs,
    mfu_peak,
    money_metrics,
)


def tokens_in(batch: Any) -> int:
    """Tokens in a batch: ``input_ids`` of a dict/BatchEncoding, the first tensor of a tuple/list, or a
    2-D tensor itself (numel). 0 if none is found."""
    if batch is None:
        return 0
    if hasattr(batch, "get") and not hasattr(batch, "numel"):
        ids = batch.get("input_ids")
        if ids is None:
            ids = next((v for v in batch.values() if hasattr(v, "numel")), None)
        return int(ids.numel()) if ids is not None else 0
    if isinstance(batch, (tuple, list)) and batch:
        return tokens_in(batch[0])
    if hasattr(batch, "numel"):
        return int(batch.numel())
    return 0


class RunTracker:
    """Times steps and records one run.

    Attributes:
        warmup_steps: first steps excluded from timings (the first step pays one-off costs).
        steps_done: optimizer steps (or batches) seen.
    """

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
        price_usd_per_device_h: float | None = None,
        carbon_kg_per_kwh: float | None = None,
        pue: float | None = None,
    ) -> None:
        self.ledger = ledger if is_main else None
        self.model_name = model_name
        self.device = device
        self.strategy = strategy
        self.precision = precision
        self.world_size = world_size
        self.config = dict(config or {})
        self.meters = as_meter_set(meters)
        self._own_meters = meters is None
        self.warmup_steps = warmup_steps
        self.checkpoint_every = checkpoint_every
        self.cost_args = {
            "price_usd_per_device_h": price_usd_per_device_h,
            "carbon_kg_per_kwh": carbon_kg_per_kwh,
            "pue": pue,
        }
        self.run_id: str | None = None
        self.record: Any = None
        self.steps_done = 0
        self.tokens_total = 0
        self.tokens_measured = 0
        self._step_tokens = 0
        self._in_step = False
        self._measuring = False
        self._energy_started = False
        self.param_count: int | None = None
        self.loss_last: float | None = None
        self.finished = False

    # ---- lifecycle ------------------------------------------------------------------------------------
    def start(self, model: Any = None) -> None:
        from mlcost.measure.provenance import collect_provenance
        from mlcost.measure.record import RunRecord

        if self.meters is None:
            from mlcost.measure.meters import select_meters

            self.meters = select_meters(self.device)
        if model is not None:
            with contextlib.suppress(Exception):
                from mlcost.measure.torch_models import param_count

                self.param_count = param_count(model)
        name = self.model_name
        if name is None and model is not None:
            cfg = getattr(model, "config", None)
            name = (
                getattr(cfg, "name_or_path", None) or getattr(cfg, "model_type", None) or type(model).__name__
            )
        self.record = RunRecord(
            kind="train",
            model=str(name or "model"),
            config={**self.config, "precision": self.precision, "source": "callback"},
            strategy=self.strategy,
            device=self.device,
            world_size=self.world_size,
            provenance=collect_provenance(import_torch=True),
        )
        self.meters.memory.reset()
        if self.ledger is not None:
            self.run_id = self.ledger.start_run(self.record)

    def add_tokens(self, n: int) -> None:
        self._step_tokens += n

    def step_begin(self) -> None:
        if self._in_step:
            return
        self._in_step = True
        self._measuring = self.steps_done >= self.warmup_steps
        if self._measuring:
            if not self._energy_started:
                self.meters.energy.begin()
                self._energy_started = True
            self.meters.timer.start()

    def step_end(self, loss: float | None = None) -> bool:
        """Close a step; returns False when the loss is NaN/inf (the run has diverged)."""
        if not self._in_step:
            return True
        self._in_step = False
        if self._measuring:
            self.meters.timer.stop()
            self.tokens_measured += self._step_tokens
        self.tokens_total += self._step_tokens
        self._step_tokens = 0
        self.steps_done += 1
        if loss is not None:
            self.loss_last = float(loss)
            if not math.isfinite(self.loss_last):
                return False
        if self.ledger is not None and self.run_id and self.steps_done % self.checkpoint_every == 0:
            with contextlib.suppress(Exception):
                self.ledger.update_metrics(self.run_id, self.metrics(final=False))
        return True

    def metrics(self, *, final: bool) -> dict[str, Any]:
        from mlcost.measure.meters import summarize_times

        out: dict[str, Any] = {
            "steps_done": self.steps_done,
            "world_size": self.world_size,
            "loss_last": self.loss_last,
        }
        if self.meters is None:
            return out
        times = self.meters.timer.times_s()
        stats = summarize_times(times)
        measured_s = sum(times)
        out.update(
            steps_measured=stats["n"],
            step_time_s=stats["median_s"],
            step_time_p90_s=stats["p90_s"],
            measured_s=measured_s,
            param_count=self.param_count,
        )
        if measured_s > 0 and self.tokens_measured:
            per_device = self.tokens_measured / measured_s
            out["tokens_per_s_per_device"] = per_device
            out["tokens_per_s"] = per_device * self.world_size
            out["tokens_per_step"] = self.tokens_measured / max(1, stats["n"] or 1) * self.world_size
            if self.param_count:
                achieved = 6.0 * self.param_count * per_device
                out["achieved_flops_per_s_per_device"] = achieved
                out["achieved_flops_per_s"] = achieved * self.world_size
                out["model_flops_source"] = (
                    "6 × parameters × tokens (approximation; attention FLOPs not counted)"
                )
                peak, source = mfu_peak(self.device, self.precision)
                out["mfu_peak_flops_per_s"] = peak
                out["mfu_peak_source"] = source
                out["mfu"] = achieved / peak if peak else None
        mem = self.meters.memory.read()
        out["peak_memory_bytes"] = mem.peak_bytes
        out["memory_source"] = mem.source
        if final and self._energy_started:
            reading = self.meters.energy.end()
            out["energy_j"] = reading.energy_j * self.world_size
            out["energy_source"] = reading.source
            out["energy_detail"] = reading.detail + (
                f" (× {self.world_size} ranks, assumed equal)" if self.world_size > 1 else ""
            )
        if final:
            out.update(
                money_metrics(
                    energy_j=out.get("energy_j"),
                    measured_s=measured_s,
                    world_size=self.world_size,
                    tokens_per_s=out.get("tokens_per_s"),
                    inputs=cost_inputs(self.device, **self.cost_args),  # type: ignore[arg-type]
                )
            )
        return out

    def finish(self, status: str, error: str | None = None) -> Any:
        """Write the final status and metrics; idempotent (the first call wins)."""
        from mlcost.measure.record import utc_now_iso

        if self.finished or self.record is None:
            return self.record
        self.finished = True
        try:
            metrics = self.metrics(final=True)
        except Exception as exc:  # never lose the status because a meter failed
            metrics = {"steps_done": self.steps_done, "partial_metrics_error": repr(exc)}
        if self.ledger is not None and self.run_id:
            self.ledger.finish_run(self.run_id, status, metrics=metrics, error=error)
            self.record = self.ledger.get(self.run_id)
        else:
            self.record = self.record.replace(
                status=status, metrics=metrics, error=error, finished_at=utc_now_iso()
            )
        if self._own_meters and self.meters is not None and callable(getattr(self.meters, "close", None)):
            self.meters.close()
        return self.record

    def fail(self, exc: BaseException) -> Any:
        """Finish as failed / oom / interrupted according to the exception."""
        return self.finish(classify_exception(exc), f"{type(exc).__name__}: {exc}")

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """``with tracker.guard(): trainer.train()`` records failed/oom/interrupted if training raises."""
        try:
            yield
        except BaseException as exc:
            if self.record is not None:
                self.fail(exc)
            raise
