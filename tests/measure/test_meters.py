"""Meters that run for real on a CPU: clock, RSS, estimated energy, RAPL on a fake sysfs tree, replay."""

from __future__ import annotations

import json
import mmap
import time
from pathlib import Path

import numpy as np
import pytest

from mlcost.errors import MlcostError
from mlcost.measure.meters import (
    ClockTimer,
    EnergyMeter,
    EstimatedEnergyMeter,
    MemoryMeter,
    MeterSet,
    RaplEnergyMeter,
    ReplayMeters,
    RssMemoryMeter,
    StepTimer,
    estimate_cpu_power,
    estimate_cpu_power_w,
    find_rapl_zones,
    rapl_available,
    select_meters,
    summarize_times,
)
from mlcost.measure.meters import estimated as estimated_mod

MB = 1_000_000


def test_clock_timer_monotonic_and_sane() -> None:
    timer = ClockTimer()
    assert isinstance(timer, StepTimer)
    for _ in range(3):
        timer.start()
        time.sleep(0.01)
        timer.stop()
    times = timer.times_s()
    assert len(times) == 3
    assert all(0.009 <= t < 0.5 for t in times)
    with pytest.raises(RuntimeError):
        timer.stop()
    timer.reset()
    assert timer.times_s() == []


def test_summarize_times_matches_numpy() -> None:
    times = [0.5, 0.1, 0.2, 0.4, 0.3, 0.9]
    s = summarize_times(times)
    assert s["n"] == 6
    assert s["median_s"] == pytest.approx(np.median(times))
    assert s["p90_s"] == pytest.approx(np.percentile(times, 90))
    assert s["mean_s"] == pytest.approx(np.mean(times))
    assert s["min_s"] == 0.1
    assert summarize_times([])["n"] == 0


def _fresh_pages(nbytes: int) -> np.ndarray:
    """An array on new anonymous pages, all touched: resident memory the process did not hold before. (A
    plain ``np.ones`` may reuse pages malloc kept after earlier tests freed them — torch's many-MB tensors
    raise glibc's dynamic mmap threshold — and then the resident set does not grow at all.)"""
    arr = np.frombuffer(mmap.mmap(-1, nbytes), dtype=np.float64)
    arr.fill(1.0)
    return arr


def test_rss_meter_catches_200mb_peak_in_window() -> None:
    with RssMemoryMeter(interval_s=0.005) as meter:
        assert isinstance(meter, MemoryMeter)
        # Raise the process-lifetime ru_maxrss first, so only the sampler can see the window's peak.
        big = np.ones(300 * MB // 8)
        del big
        meter.reset()
        base = meter.baseline_bytes
        block = _fresh_pages(200 * MB)  # touched pages: resident
        time.sleep(0.05)
        del block
        reading = meter.read()
    assert reading.source == "rss"
    assert reading.reserved_bytes is None
    assert reading.peak_bytes - base >= 190 * MB


def test_rss_meter_uses_ru_maxrss_for_short_spikes() -> None:
    meter = RssMemoryMeter(interval_s=None)  # no sampler thread
    meter.reset()
    base = meter.baseline_bytes
    block = np.ones(600 * MB // 8)  # a new lifetime high for the test process
    del block
    assert meter.read().peak_bytes - base >= 500 * MB


def test_rss_sampler_stops_cleanly() -> None:
    meter = RssMemoryMeter(interval_s=0.001, kernel_peak=False)
    assert meter.mode == "sampler"
    thread = meter._thread
    assert thread is not None and thread.is_alive()
    meter.close()
    assert not thread.is_alive()
    meter.close()  # idempotent


def _kernel_watermark_available() -> bool:
    from mlcost.measure.meters import memory

    return memory._reset_kernel_peak()


@pytest.mark.skipif(
    not _kernel_watermark_available(), reason="needs a writable /proc/self/clear_refs (Linux)"
)
def test_rss_kernel_watermark_is_exact_and_threadless() -> None:
    import gc

    gc.collect()  # meters other tests dropped without close() release the watermark here
    with RssMemoryMeter(interval_s=0.005) as meter:
        assert meter.mode == "kernel-hwm" and meter._thread is None
        big = np.ones(300 * MB // 8)  # a high-water mark before the window ...
        del big
        meter.reset()  # ... which the reset forgets
        assert meter.read().peak_bytes - meter.baseline_bytes < 50 * MB
        block = _fresh_pages(150 * MB)  # a spike far shorter than any sampling interval
        del block
        assert meter.read().peak_bytes - meter.baseline_bytes >= 140 * MB
        # A second meter cannot share the process's one counter: it samples instead.
        with RssMemoryMeter(interval_s=0.005) as other:
            assert other.mode == "sampler" and other._thread is not None
    with RssMemoryMeter(interval_s=0.005) as again:  # released on close
        assert again.mode == "kernel-hwm"


def test_estimated_energy_is_power_times_time_with_core_share() -> None:
    meter = EstimatedEnergyMeter(280.0, cores_used=2, cores_total=128, idle_w=1.0, detail="test socket")
    assert isinstance(meter, EnergyMeter)
    assert meter.power_w == pytest.approx(280 * 2 / 128 + 1.0)
    meter.begin()
    time.sleep(0.02)
    reading = meter.end()
    assert reading.source == "estimated" and not reading.is_measured
    assert reading.energy_j == pytest.approx(meter.power_w * reading.duration_s)
    assert "test socket" in reading.detail
    with pytest.raises(ValueError):
        EstimatedEnergyMeter(-1.0)


def test_estimate_cpu_power_never_charges_the_whole_default_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(estimated_mod, "_catalog_cpu_row", lambda catalog, host: None)
    est = estimate_cpu_power(cores_used=2, cpu_model="Some CPU")
    assert est.cores_total == estimated_mod.DEFAULT_SOCKET_LOGICAL_CPUS
    assert est.power_w == pytest.approx(estimated_mod.DEFAULT_SOCKET_TDP_W * 2 / est.cores_total)
    assert est.power_w < 10
    assert "default socket" in est.explanation and "2/128" in est.explanation
    watts, text = estimate_cpu_power_w(cores_used=2, cpu_model="Some CPU")
    assert watts == est.power_w and text == est.explanation


def test_estimate_cpu_power_uses_a_catalog_row(monkeypatch: pytest.MonkeyPatch) -> None:
    class Row:
        id = "cpu-test"
        name = "Test CPU (4 vCPU VM)"
        kind = "cpu"
        tdp_w = 20.0
        date = "2026-01-01"

    monkeypatch.setattr(estimated_mod, "_catalog_cpu_row", lambda catalog, host: (Row(), None))
    est = estimate_cpu_power(cores_used=2, cpu_model="Test CPU")
    assert est.cores_total == 4
    assert est.power_w == pytest.approx(10.0)
    assert "cpu-test" in est.explanation


def _fake_rapl(root: Path, zones: dict[str, tuple[int, int]]) -> None:
    for name, (energy_uj, max_uj) in zones.items():
        zone = root / name
        zone.mkdir(parents=True)
        (zone / "name").write_text(f"package-{name[-1]}\n")
        (zone / "energy_uj").write_text(f"{energy_uj}\n")
        (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")


def test_rapl_reads_package_zones_and_handles_wraparound(tmp_path: Path) -> None:
    _fake_rapl(
        tmp_path, {"intel-rapl:0": (999_000_000, 1_000_000_000), "intel-rapl:1": (5_000_000, 1_000_000_000)}
    )
    _fake_rapl(tmp_path, {"intel-rapl:0:0": (1, 1_000_000_000)})  # sub-zone (core): not summed
    assert rapl_available(tmp_path)
    assert [z.path.name for z in find_rapl_zones(tmp_path)] == ["intel-rapl:0", "intel-rapl:1"]
    meter = RaplEnergyMeter(tmp_path, poll_interval_s=None)
    meter.begin()
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("2000000\n")  # wrapped: +1 J to the max, +2 J after
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("9000000\n")  # +4 J
    reading = meter.end()
    assert reading.source == "rapl" and reading.is_measured
    assert reading.energy_j == pytest.approx(1.0 + 2.0 + 4.0)


def test_rapl_poll_catches_several_wraps(tmp_path: Path) -> None:
    _fake_rapl(tmp_path, {"intel-rapl:0": (0, 10_000_000)})
    counter = tmp_path / "intel-rapl:0" / "energy_uj"
    meter = RaplEnergyMeter(tmp_path, poll_interval_s=None)
    meter.begin()
    for value in (6_000_000, 2_000_000, 8_000_000, 1_000_000):  # +6, +6, +6, +3 J
        counter.write_text(f"{value}\n")
        meter.poll()
    assert meter.end().energy_j == pytest.approx(21.0)


def test_rapl_background_poller_stops(tmp_path: Path) -> None:
    _fake_rapl(tmp_path, {"intel-rapl:0": (0, 10_000_000)})
    meter = RaplEnergyMeter(tmp_path, poll_interval_s=0.001)
    meter.begin()
    time.sleep(0.01)
    meter.end()
    assert meter._thread is None


def test_rapl_unreadable_or_absent_is_not_available(tmp_path: Path) -> None:
    assert not rapl_available(tmp_path / "missing")
    _fake_rapl(tmp_path, {"intel-rapl:0": (0, 10)})
    counter = tmp_path / "intel-rapl:0" / "energy_uj"
    counter.unlink()
    counter.mkdir()  # reading it raises an OSError, as a root-only file does for a user
    assert not rapl_available(tmp_path)
    with pytest.raises(MlcostError, match="RAPL"):
        RaplEnergyMeter(tmp_path)


def test_replay_meters_satisfy_all_protocols_and_replay() -> None:
    replay = ReplayMeters.from_readings(step_times_s=[0.1, 0.3], energy_j=8.0, peak_bytes=123)
    assert (
        isinstance(replay, StepTimer) and isinstance(replay, EnergyMeter) and isinstance(replay, MemoryMeter)
    )
    replay.reset()
    replay.begin()
    for _ in range(4):
        replay.start()
        replay.stop()
    assert replay.times_s() == [0.1, 0.3, 0.1, 0.3]
    reading = replay.end()
    assert reading.source == "replay"
    assert reading.duration_s == pytest.approx(0.8)
    assert reading.energy_j == pytest.approx(16.0)  # two passes over the recording
    assert replay.read().peak_bytes == 123


def test_replay_from_file_and_example(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"step_times_s": [0.5], "energy_j": 2.0, "peak_bytes": 10}))
    assert ReplayMeters.from_file(path).step_times_s == [0.5]
    path.write_text(json.dumps({"energy_j": 2.0}))
    with pytest.raises(MlcostError, match="malformed"):
        ReplayMeters.from_file(path)
    example = ReplayMeters.example()
    assert len(example.step_times_s) >= 10 and example.energy_j > 0 and example.peak_bytes > 0


def test_select_meters_cpu_and_replay() -> None:
    with select_meters("cpu") as meters:
        assert isinstance(meters, MeterSet)
        assert isinstance(meters.timer, ClockTimer)
        assert isinstance(meters.memory, RssMemoryMeter)
        if not rapl_available():
            assert isinstance(meters.energy, EstimatedEnergyMeter)
            assert meters.notes
    replay = select_meters("replay")
    assert replay.timer is replay.energy is replay.memory
    with pytest.raises(MlcostError):
        select_meters("tpu")
    with pytest.raises(MlcostError):
        select_meters("cuda:x")
