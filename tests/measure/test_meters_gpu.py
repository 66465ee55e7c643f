"""NVML and CUDA meters with only the vendor boundary faked (pynvml / torch.cuda patched with autospec),
plus real-GPU tests that skip without CUDA."""

from __future__ import annotations

from unittest import mock

import pytest

from mlcost.errors import MissingDependencyError, MlcostError
from mlcost.measure import meters as meters_pkg
from mlcost.measure.meters import (
    CudaEventTimer,
    CudaMemoryMeter,
    EstimatedEnergyMeter,
    NvmlEnergyMeter,
    StepTimer,
    nvml_available,
    nvml_gpus,
    select_meters,
)

pynvml = pytest.importorskip("pynvml")


@pytest.fixture
def fake_nvml():
    """Patch the NVML calls mlcost makes; the energy counter advances 1500 mJ per read."""
    energy = iter(range(10_000, 10_000_000, 1_500))
    with (
        mock.patch("pynvml.nvmlInit", autospec=True) as init,
        mock.patch("pynvml.nvmlDeviceGetHandleByIndex", autospec=True, return_value="h0") as handle,
        mock.patch("pynvml.nvmlDeviceGetName", autospec=True, return_value="NVIDIA H100 80GB HBM3"),
        mock.patch(
            "pynvml.nvmlDeviceGetTotalEnergyConsumption", autospec=True, side_effect=lambda h: next(energy)
        ) as total,
        mock.patch("pynvml.nvmlDeviceGetCount", autospec=True, return_value=1),
        mock.patch("pynvml.nvmlSystemGetDriverVersion", autospec=True, return_value="550.54.15"),
        mock.patch("pynvml.nvmlDeviceGetMemoryInfo", autospec=True, return_value=mock.Mock(total=80 * 2**30)),
        mock.patch("pynvml.nvmlDeviceGetEnforcedPowerLimit", autospec=True, return_value=700_000),
    ):
        yield {"init": init, "handle": handle, "total": total}


def test_nvml_energy_meter_reads_the_counter_difference(fake_nvml) -> None:
    meter = NvmlEnergyMeter(0)  # reads once to check support
    meter.begin()
    reading = meter.end()
    assert reading.source == "nvml" and reading.is_measured
    assert reading.energy_j == pytest.approx(1.5)  # 1500 mJ
    assert "GPU 0" in reading.detail and "H100" in reading.detail
    assert meter.power_limit_w() == pytest.approx(700.0)
    fake_nvml["handle"].assert_called_with(0)


def test_nvml_gpus_and_available(fake_nvml) -> None:
    gpus = nvml_gpus()
    assert gpus == [
        {
            "index": 0,
            "name": "NVIDIA H100 80GB HBM3",
            "memory_bytes": 80 * 2**30,
            "driver": "550.54.15",
            "energy_counter": True,
        }
    ]
    assert nvml_available(0) and not nvml_available(1)


def test_nvml_without_driver_is_a_clear_error() -> None:
    error = pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    with mock.patch("pynvml.nvmlInit", autospec=True, side_effect=error):
        with pytest.raises(MlcostError, match="NVML could not be initialised") as info:
            NvmlEnergyMeter(0)
        assert "driver" in (info.value.hint or "")
        assert nvml_gpus() == []
        assert not nvml_available()


def test_nvml_counter_unsupported_pre_volta(fake_nvml) -> None:
    fake_nvml["total"].side_effect = pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
    with pytest.raises(MlcostError, match="no readable total-energy counter") as info:
        NvmlEnergyMeter(0)
    assert "Volta" in (info.value.hint or "")
    assert nvml_gpus()[0]["energy_counter"] is False


def test_nvml_missing_package_is_missing_dependency() -> None:
    with mock.patch.dict("sys.modules", {"pynvml": None}):
        with pytest.raises(MissingDependencyError, match="nvidia-ml-py"):
            NvmlEnergyMeter(0)
        assert nvml_gpus() == []


class _FakeEvent:
    """Stands in for torch.cuda.Event: each record() takes the next time stamp (ms)."""

    clock_ms = 0.0

    def __init__(self, enable_timing: bool = False) -> None:
        assert enable_timing
        self.t_ms: float | None = None

    def record(self, stream: object = None) -> None:
        _FakeEvent.clock_ms += 12.5
        self.t_ms = _FakeEvent.clock_ms

    def elapsed_time(self, end: _FakeEvent) -> float:
        assert self.t_ms is not None and end.t_ms is not None
        return end.t_ms - self.t_ms


@pytest.fixture
def fake_cuda():
    torch = pytest.importorskip("torch")
    with (
        mock.patch.object(torch.cuda, "is_available", autospec=True, return_value=True),
        mock.patch.object(torch.cuda, "Event", _FakeEvent),
        mock.patch.object(torch.cuda, "synchronize", autospec=True) as sync,
        mock.patch.object(torch.cuda, "reset_peak_memory_stats", autospec=True) as reset,
        mock.patch.object(torch.cuda, "max_memory_allocated", autospec=True, return_value=3 * 2**30),
        mock.patch.object(torch.cuda, "max_memory_reserved", autospec=True, return_value=4 * 2**30),
    ):
        yield {"sync": sync, "reset": reset}


def test_cuda_event_timer_synchronises_lazily(fake_cuda) -> None:
    timer = CudaEventTimer(0)
    assert isinstance(timer, StepTimer)
    for _ in range(3):
        timer.start()
        timer.stop()
    fake_cuda["sync"].assert_not_called()
    assert timer.times_s() == pytest.approx([0.0125] * 3)
    fake_cuda["sync"].assert_called_once_with(0)
    assert len(timer.times_s()) == 3  # nothing pending: no second sync
    fake_cuda["sync"].assert_called_once()


def test_cuda_memory_meter(fake_cuda) -> None:
    meter = CudaMemoryMeter(0)
    meter.reset()
    fake_cuda["reset"].assert_called_once_with(0)
    reading = meter.read()
    assert reading.peak_bytes == 3 * 2**30 and reading.reserved_bytes == 4 * 2**30
    assert reading.source == "cuda_max_allocated"


def test_select_meters_cuda_with_nvml(fake_cuda, fake_nvml) -> None:
    meters = select_meters("cuda:0")
    assert isinstance(meters.timer, CudaEventTimer)
    assert isinstance(meters.energy, NvmlEnergyMeter)
    assert isinstance(meters.memory, CudaMemoryMeter)


def test_select_meters_cuda_falls_back_to_power_limit_estimate(fake_cuda, fake_nvml) -> None:
    fake_nvml["total"].side_effect = pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
    meters = select_meters("cuda")
    assert isinstance(meters.energy, EstimatedEnergyMeter)
    assert meters.energy.power_w == pytest.approx(700.0)
    assert any("estimated" in n for n in meters.notes)


def test_cuda_meters_need_cuda() -> None:
    torch = pytest.importorskip("torch")
    with (
        mock.patch.object(torch.cuda, "is_available", autospec=True, return_value=False),
        pytest.raises(MlcostError, match="CUDA"),
    ):
        CudaEventTimer()
    assert meters_pkg.DEFAULT_GPU_POWER_W > 0


def _has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not _has_cuda(), reason="needs CUDA")
def test_real_cuda_meters() -> None:  # pragma: no cover - runs on GPU machines only
    import torch

    with select_meters("cuda") as meters:
        x = torch.randn(2048, 2048, device="cuda")
        meters.memory.reset()
        meters.energy.begin()
        for _ in range(5):
            meters.timer.start()
            (x @ x).sum()
            meters.timer.stop()
        times = meters.timer.times_s()
        energy = meters.energy.end()
        memory = meters.memory.read()
    assert len(times) == 5 and all(t > 0 for t in times)
    assert energy.energy_j >= 0
    assert memory.peak_bytes >= 2048 * 2048 * 4
