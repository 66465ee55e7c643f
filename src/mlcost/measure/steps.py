"""The one step loop of mlcost: warm-up steps, then measured steps timed by the meters, energy over the
measured window, a divergence check, heartbeats and progress.

A **step** is one optimizer step everywhere (all its gradient-accumulation micro-batches); the micro-batch
count is its own field (``micro_batches_done``). For serving, a step is one request.

Two ways in, one bookkeeping:

* :meth:`StepLoop.drive` runs ``step_fn`` ``n`` times (``measure train``, the dry run, ``measure serve``,
  calibrate's runs);
* :meth:`StepLoop.begin` / :meth:`StepLoop.end` from a framework's hooks (the HF Trainer and Lightning
  callbacks, whose framework owns the step).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlcost.measure.distributed import DistContext, all_reduce, all_reduce_list, broadcast_flag
from mlcost.measure.meters.stats import dispersion, stability_warnings, summarize_times

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class StepOutput:
    """What one step reports: its loss (None for serving), tokens processed on this rank, micro-batches."""

    loss: float | None = None
    tokens: int = 0
    micro_batches: int = 1


class StepLoop:
    """Times steps with ``run.meters`` and reports to ``run`` (a :class:`~mlcost.measure.lifecycle.RunLifecycle`).

    Args:
        run: the lifecycle (meters, heartbeat, ledger).
        warmup: first steps excluded from timings (timed apart: ``warmup_step_times_s``).
        checkpoint_every: heartbeat with partial metrics every this many measured steps.
        progress: called as ``progress(steps_done, total)`` after each step of :meth:`drive`.
        sync: called before reading a clock around warm-up steps (CUDA synchronise), or None.
        ctx / device: the process group; step times are the slowest rank's, tokens summed over ranks.
    """

    def __init__(
        self,
        run: Any,
        *,
        warmup: int = 0,
        checkpoint_every: int = 5,
        progress: ProgressFn | None = None,
        sync: Callable[[], None] | None = None,
        ctx: DistContext | None = None,
        device: str = "cpu",
    ) -> None:
        self.run = run
        run.loop = self
        self.meters = run.ensure_meters()
        self.warmup = warmup
        self.checkpoint_every = max(1, checkpoint_every)
        self.progress = progress
        self.sync = sync
        self.ctx = ctx or DistContext()
        self.device = device
        self.steps_done = 0
        self.micro_batches_done = 0
        self.tokens_measured = 0
        self.warmup_times_s: list[float] = []
        self.losses: list[float] = []
        self.energy_started = False
        self._in_step = False
        self._measuring = False
        self._t0 = 0.0
        self.meters.memory.reset()

    # ---- hooks ----------------------------------------------------------------------------------------
    def begin(self) -> None:
        """Open a step (a no-op inside an open step)."""
        if self._in_step:
            return
        self._in_step = True
        self._measuring = self.steps_done >= self.warmup
        if self._measuring:
            if not self.energy_started:
                self._sync()
                self.meters.energy.begin()
                self.energy_started = True
            self.meters.timer.start()
        else:
            self._sync()
            self._t0 = time.perf_counter()

    def end(self, out: StepOutput | None = None) -> bool:
        """Close the open step; returns False when its loss is NaN/inf on any rank (the run diverged)."""
        if not self._in_step:
            return True
        out = out or StepOutput()
        self._in_step = False
        if self._measuring:
            self.meters.timer.stop()
            self.tokens_measured += out.tokens
        else:
            self._sync()
            self.warmup_times_s.append(time.perf_counter() - self._t0)
        self.steps_done += 1
        self.micro_batches_done += out.micro_batches
        if out.loss is not None:
            self.losses.append(float(out.loss))
        bad = out.loss is not None and not math.isfinite(out.loss)
        if broadcast_flag(bad, self.ctx, self.device):
            return False
        measured = self.steps_done - self.warmup
        if measured > 0 and measured % self.checkpoint_every == 0:
            self.run.heartbeat(self.partial_metrics(energy=False))
        return True

    def drive(self, step_fn: Callable[[], StepOutput], total: int) -> str:
        """Run ``step_fn`` ``total`` times (warm-up included): ``completed`` or ``diverged``."""
        for i in range(total):
            self.begin()
            ok = self.end(step_fn())
            if self.progress is not None:
                self.progress(i + 1, total)
            if not ok:
                return "diverged"
        return "completed"

    def _sync(self) -> None:
        if self.sync is not None:
            self.sync()

    # ---- figures --------------------------------------------------------------------------------------
    @property
    def loss_last(self) -> float | None:
        return self.losses[-1] if self.losses else None

    def counters(self) -> dict[str, Any]:
        return {
            "steps_done": self.steps_done,
            "micro_batches_done": self.micro_batches_done,
            "world_size": self.ctx.world_size,
            "loss_first": self.losses[0] if self.losses else None,
            "loss_last": self.loss_last,
        }

    def partial_metrics(self, *, energy: bool = True) -> dict[str, Any]:
        """Whatever can be read now, on this rank only (never raises): for heartbeats and cut-short runs."""
        out = self.counters()
        try:
            times = self.meters.timer.times_s()
            stats = summarize_times(times)
            out["steps_measured"] = stats["n"]
            if stats["median_s"]:
                per_step = self.tokens_measured / int(stats["n"] or 1) * self.ctx.world_size
                out.update(
                    step_time_s=stats["median_s"],
                    step_time_p90_s=stats["p90_s"],
                    measured_s=sum(times),
                    tokens_per_step=per_step,
                    tokens_per_s=per_step / float(stats["median_s"]),
                )
            mem = self.meters.memory.read()
            out["peak_memory_bytes"] = mem.peak_bytes
            out["memory_source"] = mem.source
            if energy and self.energy_started:
                out.update(self._energy(self.meters.energy.end(), reduce=False))
                self.energy_started = False
        except Exception as exc:  # partial metrics are best effort
            out["partial_metrics_error"] = repr(exc)
        return out

    def summary(self) -> dict[str, Any]:
        """Final figures over all ranks: step-time statistics and dispersion (with warnings when unstable),
        tokens/s, peak memory, energy. FLOP/s and MFU are added by :func:`flops_metrics`."""
        times = all_reduce_list(self.meters.timer.times_s(), "max", self.ctx, self.device)
        stats = summarize_times(times)
        disp = dispersion(times)
        warnings = stability_warnings(disp)
        tokens = all_reduce(float(self.tokens_measured), "sum", self.ctx, self.device)
        out: dict[str, Any] = {
            **self.counters(),
            "steps_measured": stats["n"],
            "step_time_s": stats["median_s"],
            "step_time_mean_s": stats["mean_s"],
            "step_time_min_s": stats["min_s"],
            **disp,
            "stable": not warnings,
            "warnings": warnings,
            "measured_s": sum(times),
            "step_times_s": times,
            "warmup_step_times_s": self.warmup_times_s,
        }
        if self.warmup_times_s:
            out["first_step_s"] = self.warmup_times_s[0]
        if stats["n"]:
            out["tokens_per_step"] = tokens / stats["n"]
        if stats["median_s"] and stats["n"]:
            out["tokens_per_s"] = out["tokens_per_step"] / stats["median_s"]
            out["tokens_per_s_per_device"] = out["tokens_per_s"] / self.ctx.world_size
        out.update(self._memory())
        if self.energy_started:
            out.update(self._energy(self.meters.energy.end(), reduce=True))
            self.energy_started = False
        return out

    def _memory(self) -> dict[str, Any]:
        mem = self.meters.memory.read()
        out: dict[str, Any] = {
            "peak_memory_bytes": int(all_reduce(float(mem.peak_bytes), "max", self.ctx, self.device)),
            "memory_source": mem.source,
        }
        if mem.reserved_bytes is not None:
            out["reserved_memory_bytes"] = int(
                all_reduce(float(mem.reserved_bytes), "max", self.ctx, self.device)
            )
        return out

    def _energy(self, reading: Any, *, reduce: bool) -> dict[str, Any]:
        ranks = self.ctx.world_size
        summed = reduce and self.ctx.is_distributed
        return {
            "energy_j": all_reduce(reading.energy_j, "sum", self.ctx, self.device)
            if reduce
            else reading.energy_j,
            "energy_source": reading.source,
            "energy_detail": reading.detail + (f" (summed over {ranks} ranks)" if summed else ""),
            "energy_duration_s": reading.duration_s,
        }


def flops_metrics(
    summary: dict[str, Any],
    *,
    model_flops_per_step: float | None,
    hardware_flops_per_step: float | None,
    source: str,
    device: str,
    precision: str,
    world_size: int = 1,
    facts: Any = None,
) -> dict[str, Any]:
    """Achieved FLOP/s and MFU from the FLOPs of one step over all ranks and the median step time; the
    peak comes from ``facts`` (:class:`~mlcost.measure.options.RunFacts`, None = the package catalog)."""
    from mlcost.measure.facts import mfu_of

    if model_flops_per_step is None:
        return {"model_flops_source": source, "mfu": None, "mfu_unavailable_reason": source}
    out: dict[str, Any] = {"model_flops_per_step": model_flops_per_step, "model_flops_source": source}
    if hardware_flops_per_step is not None:
        out["hardware_flops_per_step"] = hardware_flops_per_step
    median = summary.get("step_time_s")
    if median:
        out["achieved_flops_per_s"] = model_flops_per_step / median
        out["achieved_flops_per_s_per_device"] = out["achieved_flops_per_s"] / world_size
        out.update(mfu_of(out["achieved_flops_per_s_per_device"], device, precision, facts))
    return out
