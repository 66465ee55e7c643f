"""Meters: step time, energy and peak memory, one module per backend (see ``base.py``).

``select_meters(device)`` picks the best available backend for each quantity:

=========  =================  ==========================================  ==================
device     timer              energy                                      memory
=========  =================  ==========================================  ==================
cuda[:N]   CUDA events        NVML counter, else estimated (power limit)  CUDA allocator peak
cpu        perf_counter       RAPL if readable, else estimated            peak RSS (sampled)
replay     shipped readings   shipped readings                            shipped readings
=========  =================  ==========================================  ==================

Backends import torch / nvidia-ml-py lazily, so ``import mlcost.measure.meters`` is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlcost.errors import MlcostError
from mlcost.measure.meters.base import (
    EnergyMeter,
    EnergyReading,
    EnergySource,
    MemoryMeter,
    MemoryReading,
    MemorySource,
    StepTimer,
)
from mlcost.measure.meters.clock import ClockTimer
from mlcost.measure.meters.cuda import CudaEventTimer, CudaMemoryMeter
from mlcost.measure.meters.estimated import (
    CpuPowerEstimate,
    EstimatedEnergyMeter,
    estimate_cpu_power,
    estimate_cpu_power_w,
)
from mlcost.measure.meters.memory import RssMemoryMeter
from mlcost.measure.meters.nvml import NvmlEnergyMeter, nvml_available, nvml_gpus
from mlcost.measure.meters.rapl import RaplEnergyMeter, find_rapl_zones, rapl_available
from mlcost.measure.meters.replay import ReplayMeters
from mlcost.measure.meters.stats import summarize_times

__all__ = [
    "ClockTimer",
    "CpuPowerEstimate",
    "CudaEventTimer",
    "CudaMemoryMeter",
    "EnergyMeter",
    "EnergyReading",
    "EnergySource",
    "EstimatedEnergyMeter",
    "MemoryMeter",
    "MemoryReading",
    "MemorySource",
    "MeterSet",
    "NvmlEnergyMeter",
    "RaplEnergyMeter",
    "ReplayMeters",
    "RssMemoryMeter",
    "StepTimer",
    "estimate_cpu_power",
    "estimate_cpu_power_w",
    "find_rapl_zones",
    "nvml_available",
    "nvml_gpus",
    "rapl_available",
    "select_meters",
    "summarize_times",
]

#: Board power assumed for a GPU whose power limit NVML cannot tell. Units: W.
DEFAULT_GPU_POWER_W = 300.0


@dataclass
class MeterSet:
    """One meter per quantity, plus why each was chosen (``notes``, e.g. fallbacks)."""

    timer: StepTimer
    energy: EnergyMeter
    memory: MemoryMeter
    notes: list[str] = field(default_factory=list)

    def close(self) -> None:
        """Stop background threads (RSS sampler, RAPL poller). Idempotent."""
        for meter in (self.timer, self.energy, self.memory):
            close = getattr(meter, "close", None)
            if callable(close):
                close()

    def __enter__(self) -> MeterSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cuda_index(device: str) -> int:
    _, _, index = device.partition(":")
    if not index:
        return 0
    try:
        return int(index)
    except ValueError as exc:
        raise MlcostError(f"bad device {device!r}", hint="write 'cuda', 'cuda:0', 'cpu' or 'replay'") from exc


def _gpu_energy_meter(index: int, notes: list[str]) -> EnergyMeter:
    try:
        return NvmlEnergyMeter(index)
    except MlcostError as exc:
        notes.append(f"GPU energy estimated: {exc}")
    power_w, how = DEFAULT_GPU_POWER_W, f"default {DEFAULT_GPU_POWER_W:g} W (power limit unknown)"
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        power_w = float(pynvml.nvmlDeviceGetEnforcedPowerLimit(handle)) / 1e3
        how = f"NVML enforced power limit of GPU {index}"
    except Exception:
        pass
    return EstimatedEnergyMeter(power_w, detail=f"{power_w:g} W = {how}, drawn for the whole run")


def select_meters(device: str = "cpu", *, catalog: Any = None, host: Any = None) -> MeterSet:
    """The best available meters for ``device`` (``cpu``, ``cuda``, ``cuda:N`` or ``replay``). ``catalog``
    and ``host`` (None: the package catalog, this machine) give the CPU row of an estimated energy."""
    notes: list[str] = []
    if device.startswith("cuda"):
        index = _cuda_index(device)
        return MeterSet(
            timer=CudaEventTimer(index),
            energy=_gpu_energy_meter(index, notes),
            memory=CudaMemoryMeter(index),
            notes=notes,
        )
    if device == "replay":
        replay = ReplayMeters.example()
        return MeterSet(replay, replay, replay, ["replayed readings shipped with mlcost"])
    if device != "cpu":
        raise MlcostError(f"no meters for device {device!r}", hint="use 'cpu', 'cuda', 'cuda:N' or 'replay'")
    energy: EnergyMeter
    if rapl_available():
        energy = RaplEnergyMeter()
    else:
        energy = EstimatedEnergyMeter.for_cpu(catalog=catalog, host=host)
        notes.append("no readable RAPL counter: CPU energy estimated")
    return MeterSet(timer=ClockTimer(), energy=energy, memory=RssMemoryMeter(), notes=notes)
