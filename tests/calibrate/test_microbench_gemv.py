"""The GEMV microbenchmark: bytes / fastest time, a matrix beyond the last-level cache, and its rate as the
``local`` row's memory bandwidth. The clock is the vendor boundary faked here; torch runs for real."""

from __future__ import annotations

import dataclasses

import pytest

from mlcost.calibrate import fit, microbench
from mlcost.calibrate.microbench import MicrobenchResult


def test_weight_size_is_a_multiple_of_the_last_level_cache() -> None:
    assert microbench.gemv_weight_bytes(llc_bytes=32 * 2**20) == 256 * 2**20  # the floor
    assert microbench.gemv_weight_bytes(llc_bytes=1152 * 2**20) == 4 * 1152 * 2**20  # a V-cache EPYC
    assert microbench.gemv_weight_bytes(llc_bytes=0) == microbench.GEMV_MIN_WEIGHT_BYTES


def test_gemv_rate_is_matrix_bytes_over_the_fastest_run(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    # perf_counter returns pairs (t0, t1): runs of 0.004, 0.002 (fastest), 0.003 s after 2 warm-ups
    ticks = iter([0.0, 0.004, 1.0, 1.002, 2.0, 2.003])
    monkeypatch.setattr(microbench.time, "perf_counter", lambda: next(ticks))
    rate, nbytes = microbench.bench_gemv(weight_bytes=4 * 4096 * 64, repeats=3)
    assert nbytes == 4 * 4096 * 64
    assert rate == pytest.approx(nbytes / 0.002)


def test_local_bandwidth_is_the_gemv_rate(fake_microbench: MicrobenchResult) -> None:
    with_gemv = dataclasses.replace(fake_microbench, gemv_bytes_per_s=20e9, gemv_weight_bytes=2.0**28)
    dev = fit.local_device(with_gemv, None)
    assert dev.mem_bw_bytes_per_s == 20e9
    assert dev.intra_node_bw_bytes_per_s == fake_microbench.copy_bytes_per_s  # processes talk by copying
    assert "GEMV" in dev.source
    # element-wise efficiency is measured against the same bandwidth
    from mlcost.catalog import builtin_catalog

    prior = builtin_catalog().efficiency("default-cpu")
    prof = fit.initial_profile(with_gemv, prior)
    assert prof.mem_bw_eff == pytest.approx(((2e9 + 1.5e9) / 2) / 20e9)
    # an old calibration without a GEMV figure keeps the copy rate
    assert fit.local_device(fake_microbench, None).mem_bw_bytes_per_s == 10e9


def test_round_trip_keeps_the_gemv_figures(fake_microbench: MicrobenchResult) -> None:
    mb = dataclasses.replace(fake_microbench, gemv_bytes_per_s=20e9, gemv_weight_bytes=2.0**28)
    back = MicrobenchResult.from_dict(mb.to_dict())
    assert back.gemv_bytes_per_s == 20e9 and back.gemv_weight_bytes == 2.0**28
