"""GPU energy from NVML's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, mJ since the
driver was loaded; Volta and newer). nvidia-ml-py is imported inside functions."""

from __future__ import annotations

import time
from typing import Any

from mlcost.errors import MissingDependencyError, MlcostError
from mlcost.measure.meters.base import EnergyReading


def _pynvml(feature: str) -> Any:
    try:
        import pynvml
    except ImportError as exc:
        raise MissingDependencyError("nvidia-ml-py", feature, extra="nvml") from exc
    return pynvml


def _init(pynvml: Any) -> None:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise MlcostError(
            f"NVML could not be initialised ({exc})",
            hint="install the NVIDIA driver (nvidia-smi must work); without it GPU energy is estimated",
        ) from exc


def _name(pynvml: Any, handle: Any) -> str:
    name = pynvml.nvmlDeviceGetName(handle)
    return name.decode() if isinstance(name, bytes) else str(name)


class NvmlEnergyMeter:
    """An :class:`~mlcost.measure.meters.base.EnergyMeter` reading one GPU's total-energy counter.

    Args:
        device_index: NVML index of the GPU (the local rank's GPU under torchrun).

    Raises:
        MissingDependencyError: nvidia-ml-py is not installed.
        MlcostError: no driver, no such GPU, or the GPU has no energy counter (pre-Volta).
    """

    name = "nvml"

    def __init__(self, device_index: int = 0) -> None:
        pynvml = _pynvml("GPU energy measurement")
        _init(pynvml)
        self._nvml = pynvml
        self.device_index = device_index
        try:
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
            self.device_name = _name(pynvml, self._handle)
        except pynvml.NVMLError as exc:
            raise MlcostError(
                f"NVML cannot open GPU {device_index} ({exc})",
                hint="check the index against nvidia-smi and CUDA_VISIBLE_DEVICES",
            ) from exc
        try:
            self._read_mj()
        except pynvml.NVMLError as exc:
            raise MlcostError(
                f"GPU {device_index} ({self.device_name}) has no readable total-energy counter ({exc})",
                hint="NVML energy needs a Volta or newer GPU; mlcost falls back to an estimated energy",
            ) from exc
        self._t0_ns: int | None = None
        self._e0_mj: int | None = None

    def _read_mj(self) -> int:
        return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))

    def begin(self) -> None:
        self._e0_mj = self._read_mj()
        self._t0_ns = time.perf_counter_ns()

    def end(self) -> EnergyReading:
        e1_mj = self._read_mj()
        t1_ns = time.perf_counter_ns()
        if self._e0_mj is None or self._t0_ns is None:
            raise RuntimeError("NvmlEnergyMeter.end() called without begin()")
        return EnergyReading(
            energy_j=(e1_mj - self._e0_mj) / 1e3,
            source="nvml",
            detail=f"NVML total energy counter, GPU {self.device_index} ({self.device_name})",
            duration_s=(t1_ns - self._t0_ns) / 1e9,
        )

    def power_limit_w(self) -> float | None:
        """The enforced power limit of the GPU (Units: W), or None if NVML cannot tell."""
        try:
            return float(self._nvml.nvmlDeviceGetEnforcedPowerLimit(self._handle)) / 1e3
        except self._nvml.NVMLError:
            return None


def nvml_gpus() -> list[dict[str, Any]]:
    """Name, memory (bytes), driver and energy-counter support of each GPU NVML sees; [] when none.

    Never raises.
    """
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:
        return []
    gpus: list[dict[str, Any]] = []
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        driver = driver.decode() if isinstance(driver, bytes) else str(driver)
        for index in range(int(pynvml.nvmlDeviceGetCount())):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            try:
                pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
                energy = True
            except pynvml.NVMLError:
                energy = False
            gpus.append(
                {
                    "index": index,
                    "name": _name(pynvml, handle),
                    "memory_bytes": int(pynvml.nvmlDeviceGetMemoryInfo(handle).total),
                    "driver": driver,
                    "energy_counter": energy,
                }
            )
    except Exception:
        return gpus
    return gpus


def nvml_available(device_index: int = 0) -> bool:
    """True when NVML works and GPU ``device_index`` has a total-energy counter. Never raises."""
    return any(g["index"] == device_index and g["energy_counter"] for g in nvml_gpus())
