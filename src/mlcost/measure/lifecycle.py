"""The one lifecycle of a measured run, shared by ``mlcost measure train|serve``, calibrate's runs and the
Hugging Face / Lightning callbacks::

    run = RunLifecycle(record, ledger=ledger, meters=meters, cost=CostOptions())
    with run.active():                   # SIGINT/SIGTERM → RunInterrupted; any exception → a final status
        run.open()                       # ledger row 'running' (predicted block attached)
        loop = StepLoop(run, warmup=2)   # the one step loop (mlcost.measure.steps)
        ...                              # loop.drive(step_fn, n) or loop.begin()/loop.end() from hooks
        run.heartbeat(metrics)           # partial metrics every few steps (the loop calls it)
    record = run.finish("completed", metrics)   # summary + cost + CO2 + ledger write, exactly once

Whatever ends the run — completion, divergence, an exception, Ctrl-C or ``kill`` (SIGTERM) — the ledger gets
one consistent final record: status, partial metrics read from the meters, error text. Only the main rank
(rank 0) writes. A ledger failure on a heartbeat is logged, not fatal.

The row may be opened late (:meth:`RunLifecycle.open` is idempotent and :meth:`finish` opens it if needed):
the callbacks open it at the first optimizer step, when the batch shape — and so the prediction — is known.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

from mlcost.errors import LedgerError, MlcostError
from mlcost.measure.facts import cost_inputs, money_metrics
from mlcost.measure.options import CostOptions, RunFacts, facts_or_builtin

log = logging.getLogger("mlcost.measure")

#: Final statuses and what ends a run with them.
STATUS_BY_EXCEPTION = (
    "interrupted: KeyboardInterrupt (Ctrl-C, SIGINT) or SIGTERM; oom: MemoryError or torch.OutOfMemoryError; "
    "failed: anything else"
)


class RunInterrupted(KeyboardInterrupt):
    """Raised by the SIGTERM handler so a terminated run finishes as ``interrupted`` with partial metrics."""


def classify_exception(exc: BaseException) -> str:
    """Final status for an exception: interrupted, oom or failed."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, MemoryError):
        return "oom"
    try:
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            return "oom"
    except (ImportError, AttributeError):
        pass
    if isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower():
        return "oom"
    return "failed"


@contextlib.contextmanager
def interrupt_signals() -> Iterator[None]:
    """While active, SIGTERM raises :class:`RunInterrupted` and SIGINT ``KeyboardInterrupt`` (main thread
    only; elsewhere a no-op). The previous handlers are restored on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _handler(signum: int, frame: Any) -> None:
        raise RunInterrupted(f"signal {signal.Signals(signum).name}")

    old_term = signal.signal(signal.SIGTERM, _handler)
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)


def as_meter_set(meters: Any) -> Any:
    """A MeterSet as is; one object that is a timer, energy and memory meter at once (ReplayMeters) is
    wrapped into a MeterSet."""
    if meters is None or hasattr(meters, "timer"):
        return meters
    from mlcost.measure.meters import MeterSet

    return MeterSet(timer=meters, energy=meters, memory=meters, notes=[getattr(meters, "detail", "replay")])


class RunLifecycle:
    """One measured run from ``running`` to its final status.

    Args:
        record: the :class:`~mlcost.measure.record.RunRecord` to start (status ``running``).
        ledger: a :class:`~mlcost.measure.ledger.Ledger`, or None (the record is only returned).
        meters: a MeterSet (or ReplayMeters); None = ``select_meters(record.device)``, closed at finish.
        cost: price / PUE / carbon options (resolved by :func:`mlcost.measure.facts.cost_inputs`).
        facts: the catalog and calibration the run's price, PUE, carbon and estimated CPU power come from
            (:class:`~mlcost.measure.options.RunFacts`); None = the package catalog, no calibration.
        is_main: only the main rank writes the ledger.
    """

    def __init__(
        self,
        record: Any,
        *,
        ledger: Any = None,
        meters: Any = None,
        cost: CostOptions | None = None,
        facts: RunFacts | None = None,
        is_main: bool = True,
    ) -> None:
        self.record = record
        self.ledger = ledger if is_main else None
        self.cost = cost or CostOptions()
        self.facts = facts_or_builtin(facts)
        self._own_meters = meters is None
        self.meters = as_meter_set(meters)
        self.run_id: str | None = None
        self.finished = False
        self.partial: dict[str, Any] = {}
        self.loop: Any = None  # the StepLoop, set by the loop itself

    # ---- start ----------------------------------------------------------------------------------------
    def ensure_meters(self) -> Any:
        if self.meters is None:
            from mlcost.measure.meters import select_meters

            self.meters = select_meters(self.record.device, catalog=self.facts.catalog, host=self.facts.host)
        return self.meters

    def open(self, **changes: Any) -> None:
        """Write the ``running`` row (once); ``changes`` update the record first (e.g. ``predicted``)."""
        if changes:
            self.record = self.record.replace(**changes)
        if self.run_id is None and self.ledger is not None:
            self.run_id = self.ledger.start_run(self.record)
            self.record = self.record.replace(run_id=self.run_id)

    @property
    def opened(self) -> bool:
        return self.run_id is not None or self.ledger is None

    # ---- during ---------------------------------------------------------------------------------------
    def heartbeat(self, metrics: dict[str, Any]) -> None:
        """Partial metrics to the ledger (also refreshes the heartbeat); failures are logged, not raised."""
        self.partial.update(metrics)
        if self.ledger is None or self.run_id is None:
            return
        try:
            self.ledger.update_metrics(self.run_id, metrics)
        except MlcostError as exc:
            log.warning("could not write partial metrics: %s", exc)

    @contextlib.contextmanager
    def active(self, *, reraise: bool = False) -> Iterator[RunLifecycle]:
        """Signals become exceptions; an exception finishes the run (failed / oom / interrupted) with the
        partial metrics. It is re-raised when ``reraise`` (the callbacks: the framework's own exception
        propagates) or when it is an :class:`MlcostError` before any step (a user error: the CLI prints
        it, exit 2); otherwise the block ends with the run recorded."""
        try:
            with interrupt_signals():
                yield self
        except BaseException as exc:
            self.fail(exc)
            steps = self.loop.steps_done if self.loop is not None else 0
            # A user error before any step, or a ledger that could not record the final status (the run
            # must not look recorded when it is not): the CLI prints it on one line and exits 2.
            if reraise or (isinstance(exc, MlcostError) and (steps == 0 or isinstance(exc, LedgerError))):
                raise

    # ---- end ------------------------------------------------------------------------------------------
    def fail(self, exc: BaseException) -> Any:
        """Finish as failed / oom / interrupted according to the exception, with partial metrics."""
        status = classify_exception(exc)
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if status == "failed" and not isinstance(exc, MlcostError):
            log.error("run failed", exc_info=exc)
        metrics = self.loop.partial_metrics() if self.loop is not None else {}
        return self.finish(status, metrics, error)

    def finish(self, status: str, metrics: dict[str, Any], error: str | None = None) -> Any:
        """Attach cost and CO2, write the final record and close owned meters; the first call wins."""
        from mlcost.measure.record import utc_now_iso

        if self.finished:
            return self.record
        self.finished = True
        final = {**self.partial, **metrics}
        if final.get("measured_s"):
            try:
                final.update(self._money(final))
            except MlcostError as exc:  # never lose a finished run for want of a price
                final["cost_source"] = f"unknown: {exc}"
        self.open()
        if self.ledger is not None and self.run_id is not None:
            try:
                self.ledger.finish_run(self.run_id, status, metrics=final, error=error)
            except LedgerError as exc:
                # Nothing was written (a transaction commits whole or not at all): the row keeps its last
                # heartbeat and status 'running'. Keep the figures on the record and say so.
                self.record = self.record.replace(
                    status=status, metrics=final, error=error, finished_at=utc_now_iso()
                )
                self.close()
                step = final.get("step_time_s")
                shown = f", median step {step:.4g} s" if isinstance(step, (int, float)) else ""
                raise LedgerError(
                    f"run {self.run_id} ended {status}{shown}, but its final record was not written: {exc.message}",
                    hint=f"its ledger row stays 'running' (mlcost runs mark-stale {self.run_id} once the "
                    "database is back); rerun to record the figures",
                ) from exc
            with contextlib.suppress(Exception):
                self.record = self.ledger.get(self.run_id)
        if self.record.status == "running" or self.ledger is None:
            self.record = self.record.replace(
                status=status, metrics=final, error=error, finished_at=utc_now_iso()
            )
        self.close()
        return self.record

    def _money(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return money_metrics(
            energy_j=metrics.get("energy_j"),
            measured_s=float(metrics.get("measured_s") or 0.0),
            world_size=self.record.world_size,
            tokens_per_s=metrics.get("tokens_per_s"),
            inputs=cost_inputs(self.record.device, self.cost, self.facts),
        )

    def close(self) -> None:
        if self._own_meters and self.meters is not None:
            close = getattr(self.meters, "close", None)
            if callable(close):
                close()
