"""Step time on the CPU from ``time.perf_counter_ns`` (monotonic, ns resolution)."""

from __future__ import annotations

import time


class ClockTimer:
    """A :class:`~mlcost.measure.meters.base.StepTimer` on the host clock.

    ``start()`` / ``stop()`` around each step; ``times_s()`` returns one duration per finished step.
    Suitable for CPU work, or for GPU work only when the step ends with a device synchronisation.
    """

    name = "perf_counter"

    def __init__(self) -> None:
        self._start_ns: int | None = None
        self._times_ns: list[int] = []

    def start(self) -> None:
        self._start_ns = time.perf_counter_ns()

    def stop(self) -> None:
        end_ns = time.perf_counter_ns()
        if self._start_ns is None:
            raise RuntimeError("ClockTimer.stop() called without start()")
        self._times_ns.append(end_ns - self._start_ns)
        self._start_ns = None

    def times_s(self) -> list[float]:
        """Durations of finished steps. Units: s."""
        return [t / 1e9 for t in self._times_ns]

    def reset(self) -> None:
        """Forget all recorded steps."""
        self._start_ns = None
        self._times_ns.clear()
