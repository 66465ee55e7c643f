"""Replays recorded readings: one object that is a StepTimer, an EnergyMeter and a MemoryMeter at once.
For tests and ``mlcost measure --dry-run``, so everything runs without hardware.

File format (JSON)::

    {"step_times_s": [0.0123, 0.0121, ...],   # replayed in order, cycling; Units: s
     "energy_j": 12.5,                         # energy of one pass over step_times_s; Units: J
     "energy_detail": "...",                   # optional: where the readings came from
     "peak_bytes": 123456789,                  # Units: bytes
     "reserved_bytes": null}                   # optional; Units: bytes

``end()`` scales ``energy_j`` to the steps replayed since ``begin()`` (energy per replayed second).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from mlcost.errors import MlcostError
from mlcost.measure.meters.base import EnergyReading, MemoryReading

EXAMPLE_FILE = "example_replay.json"


class ReplayMeters:
    """Satisfies :class:`StepTimer`, :class:`EnergyMeter` and :class:`MemoryMeter` with recorded values."""

    name = "replay"

    def __init__(
        self,
        step_times_s: Sequence[float],
        energy_j: float = 0.0,
        peak_bytes: int = 0,
        *,
        reserved_bytes: int | None = None,
        detail: str = "replayed readings",
    ) -> None:
        if not step_times_s:
            raise MlcostError(
                "replay needs at least one step time", hint="give step_times_s=[...] in seconds"
            )
        if any(t < 0 for t in step_times_s) or energy_j < 0 or peak_bytes < 0:
            raise MlcostError(
                "replay readings must be >= 0", hint="check step_times_s, energy_j and peak_bytes"
            )
        self.step_times_s = [float(t) for t in step_times_s]
        self.energy_j = float(energy_j)
        self.peak_bytes = int(peak_bytes)
        self.reserved_bytes = reserved_bytes
        self.detail = detail
        self._cycle_s = sum(self.step_times_s)
        self._next = 0
        self._started = False
        self._done_s: list[float] = []
        self._energy_from_step = 0

    @classmethod
    def from_readings(
        cls,
        step_times_s: Sequence[float],
        energy_j: float = 0.0,
        peak_bytes: int = 0,
        *,
        reserved_bytes: int | None = None,
        detail: str = "replayed readings",
    ) -> ReplayMeters:
        return cls(step_times_s, energy_j, peak_bytes, reserved_bytes=reserved_bytes, detail=detail)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, origin: str = "dict") -> ReplayMeters:
        try:
            return cls(
                data["step_times_s"],
                float(data.get("energy_j", 0.0)),
                int(data.get("peak_bytes", 0)),
                reserved_bytes=data.get("reserved_bytes"),
                detail=str(data.get("energy_detail") or f"replayed from {origin}"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MlcostError(
                f"replay readings in {origin} are malformed ({exc!r})",
                hint="expected keys step_times_s (list of s), energy_j, peak_bytes",
            ) from exc

    @classmethod
    def from_file(cls, path: str | Path) -> ReplayMeters:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise MlcostError(f"cannot read replay file {path} ({exc})", hint="give a JSON file") from exc
        return cls.from_dict(data, origin=str(path))

    @classmethod
    def example(cls) -> ReplayMeters:
        """The readings shipped with mlcost (a small GPT trained on a 2-vCPU EPYC)."""
        text = resources.files("mlcost.measure.meters").joinpath("data", EXAMPLE_FILE).read_text()
        return cls.from_dict(json.loads(text), origin=f"mlcost/measure/meters/data/{EXAMPLE_FILE}")

    # StepTimer
    def start(self) -> None:
        self._started = True

    def stop(self) -> None:
        if not self._started:
            raise RuntimeError("ReplayMeters.stop() called without start()")
        self._started = False
        self._done_s.append(self.step_times_s[self._next % len(self.step_times_s)])
        self._next += 1

    def times_s(self) -> list[float]:
        return list(self._done_s)

    # EnergyMeter
    def begin(self) -> None:
        self._energy_from_step = len(self._done_s)

    def end(self) -> EnergyReading:
        duration_s = sum(self._done_s[self._energy_from_step :])
        if len(self._done_s) == self._energy_from_step:  # no steps replayed: one full pass
            duration_s = self._cycle_s
        energy_j = self.energy_j * duration_s / self._cycle_s if self._cycle_s > 0 else self.energy_j
        return EnergyReading(energy_j=energy_j, source="replay", detail=self.detail, duration_s=duration_s)

    # MemoryMeter
    def reset(self) -> None:
        pass

    def read(self) -> MemoryReading:
        return MemoryReading(peak_bytes=self.peak_bytes, reserved_bytes=self.reserved_bytes, source="replay")
