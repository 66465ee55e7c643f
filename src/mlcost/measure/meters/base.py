"""The meter interfaces. One module per backend implements them:

* ``clock.py``     — step time on CPU (``time.perf_counter_ns``) — :class:`StepTimer`
* ``cuda.py``      — step time with CUDA events; peak memory from the CUDA caching allocator
* ``nvml.py``      — GPU energy from the NVML total-energy counter (nvidia-ml-py)
* ``rapl.py``      — CPU package energy from ``/sys/class/powercap`` where readable
* ``estimated.py`` — energy estimated from power × time, scaled to the share of cores used; always
  labelled ``estimated``
* ``memory.py``    — peak RSS on CPU (psutil / resource)
* ``replay.py``    — replays recorded readings, for tests and ``--dry-run``

``select_meters(device)`` in ``meters/__init__.py`` picks the best available backend for each quantity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

EnergySource = Literal["nvml", "rapl", "estimated", "replay"]
MemorySource = Literal["cuda_max_allocated", "rss", "replay"]


@dataclass(frozen=True)
class EnergyReading:
    """Energy used between ``begin()`` and ``end()``.

    Attributes:
        energy_j: Units: J.
        source: ``nvml``/``rapl`` (measured) or ``estimated`` (power model × time) or ``replay``.
        detail: how it was obtained (e.g. 'NVML total energy, GPU 0' or '2/64 cores × 225 W TDP').
        duration_s: wall time covered. Units: s.
    """

    energy_j: float
    source: EnergySource
    detail: str
    duration_s: float

    @property
    def is_measured(self) -> bool:
        return self.source in ("nvml", "rapl")


@dataclass(frozen=True)
class MemoryReading:
    """Peak memory since the last reset.

    Attributes:
        peak_bytes: peak allocated (CUDA) or peak resident set size (CPU). Units: bytes.
        reserved_bytes: CUDA reserved by the caching allocator, or None on CPU. Units: bytes.
        source: how it was read.
    """

    peak_bytes: int
    reserved_bytes: int | None
    source: MemorySource


@runtime_checkable
class StepTimer(Protocol):
    """Times training/serving steps. ``start()`` before a step, ``stop()`` after; ``times_s()`` returns
    one duration per finished step (Units: s), synchronising the device if needed."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def times_s(self) -> list[float]: ...


@runtime_checkable
class EnergyMeter(Protocol):
    """Measures (or estimates, and says so) energy over a window."""

    name: str

    def begin(self) -> None: ...

    def end(self) -> EnergyReading: ...


@runtime_checkable
class MemoryMeter(Protocol):
    """Tracks peak memory."""

    name: str

    def reset(self) -> None: ...

    def read(self) -> MemoryReading: ...
