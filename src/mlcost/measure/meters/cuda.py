"""Step time from CUDA events and peak memory from the CUDA caching allocator.

torch is imported inside the constructors, so importing this module is free.
"""

from __future__ import annotations

from typing import Any

from mlcost.errors import MlcostError, require
from mlcost.measure.meters.base import MemoryReading


def _cuda_torch(feature: str) -> Any:
    torch = require("torch", feature, extra="measure")
    if not torch.cuda.is_available():
        raise MlcostError(
            f"{feature} needs a CUDA device, but torch.cuda.is_available() is False",
            hint="run on a machine with an NVIDIA GPU and a CUDA build of torch, or use device 'cpu'",
        )
    return torch


class CudaEventTimer:
    """A :class:`~mlcost.measure.meters.base.StepTimer` from pairs of ``torch.cuda.Event``.

    ``start()``/``stop()`` only record events on the current stream (no host synchronisation, so the
    timer does not stall the pipeline); ``times_s()`` synchronises once and converts the pending pairs.
    """

    name = "cuda_events"

    def __init__(self, device: int | str | None = None) -> None:
        self._torch = _cuda_torch("CUDA step timing")
        self._device = device
        self._current: Any = None
        self._pending: list[tuple[Any, Any]] = []
        self._done_s: list[float] = []

    def _event(self) -> Any:
        event = self._torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def start(self) -> None:
        self._current = self._event()

    def stop(self) -> None:
        if self._current is None:
            raise RuntimeError("CudaEventTimer.stop() called without start()")
        self._pending.append((self._current, self._event()))
        self._current = None

    def times_s(self) -> list[float]:
        """Durations of finished steps (synchronises the device if steps are pending). Units: s."""
        if self._pending:
            if self._device is None:
                self._torch.cuda.synchronize()
            else:
                self._torch.cuda.synchronize(self._device)
            for begin, end in self._pending:
                self._done_s.append(begin.elapsed_time(end) / 1e3)  # elapsed_time is in ms
            self._pending.clear()
        return list(self._done_s)

    def reset(self) -> None:
        self._current = None
        self._pending.clear()
        self._done_s.clear()


class CudaMemoryMeter:
    """A :class:`~mlcost.measure.meters.base.MemoryMeter`: peak allocated and reserved bytes of the CUDA
    caching allocator since ``reset()`` (``torch.cuda.reset_peak_memory_stats``)."""

    name = "cuda_memory"

    def __init__(self, device: int | str | None = None) -> None:
        self._torch = _cuda_torch("CUDA memory measurement")
        self._device = device

    def reset(self) -> None:
        self._torch.cuda.reset_peak_memory_stats(self._device)

    def read(self) -> MemoryReading:
        cuda = self._torch.cuda
        return MemoryReading(
            peak_bytes=int(cuda.max_memory_allocated(self._device)),
            reserved_bytes=int(cuda.max_memory_reserved(self._device)),
            source="cuda_max_allocated",
        )
