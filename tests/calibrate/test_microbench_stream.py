"""The weight-stream-by-rows microbenchmark (a GEMM of M rows over weights beyond the last-level cache) and
its way into the calibrated profile, whose serving iteration cost it shapes. torch runs for real; the clock
is faked where a figure is checked exactly."""

from __future__ import annotations

import dataclasses

import pytest

from mlcost.calibrate import fit, microbench
from mlcost.calibrate.microbench import MicrobenchResult
from mlcost.catalog import builtin_catalog
from mlcost.estimate.serve_step import STREAM_EXTRA_PREFIX, weight_stream_curve


def test_block_shapes_follow_the_transformer() -> None:
    assert microbench.transformer_weight_shapes(8, 24) == [(8, 8)] * 4 + [(24, 8), (24, 8), (8, 24)]
    assert microbench.transformer_weight_shapes(8, 32, gated=False) == [(8, 8)] * 4 + [(32, 8), (8, 32)]


def test_rate_is_stacked_weight_bytes_over_the_fastest_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    # an untimed warm-up per row count (1, 3), then rounds over both: 0.004 / 0.003 s, then 0.002 / 0.005 s
    ticks = iter([2.0, 2.004, 3.0, 3.003, 4.0, 4.002, 5.0, 5.005])
    monkeypatch.setattr(microbench.time, "perf_counter", lambda: next(ticks))
    shapes = [(16, 8), (8, 16)]
    rates = microbench.bench_weight_stream_rows(rows=(1, 3), shapes=shapes, weight_bytes=4096, repeats=2)
    block = 4.0 * (16 * 8 + 8 * 16)
    stacked = block * -(-4096 // int(block))  # whole blocks, at least the requested size
    assert set(rates) == {1, 3}
    assert rates[1] == pytest.approx(stacked / 0.002) and rates[3] == pytest.approx(stacked / 0.003)


def test_real_run_gives_a_positive_rate_per_row_count() -> None:
    pytest.importorskip("torch")
    rates = microbench.bench_weight_stream_rows(rows=(1, 2, 8), weight_bytes=2**20, repeats=1)
    assert sorted(rates) == [1, 2, 8] and all(r > 0 for r in rates.values())


def test_bad_shapes_are_refused() -> None:
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match="positive"):
        microbench.bench_weight_stream_rows(rows=(1,), shapes=[(0, 8)], weight_bytes=1024)


def test_curve_round_trips_and_becomes_relative_profile_extras(fake_microbench: MicrobenchResult) -> None:
    mb = dataclasses.replace(fake_microbench, weight_stream_bytes_per_s={1: 12e9, 2: 6e9, 3: 4.8e9, 8: 9.6e9})
    assert MicrobenchResult.from_dict(mb.to_dict()).weight_stream_bytes_per_s == mb.weight_stream_bytes_per_s
    prof = fit.initial_profile(mb, builtin_catalog().efficiency("default-cpu"))
    assert prof.extra[f"{STREAM_EXTRA_PREFIX}1"] == 1.0
    assert prof.extra[f"{STREAM_EXTRA_PREFIX}2"] == pytest.approx(0.5)
    assert weight_stream_curve(prof) == ((1, 2, 3, 8), pytest.approx((1.0, 0.5, 0.4, 0.8)))
    # an old calibration without the curve adds no extras (and serving streams at one rate)
    assert not any(
        k.startswith(STREAM_EXTRA_PREFIX)
        for k in fit.initial_profile(fake_microbench, builtin_catalog().efficiency("default-cpu")).extra
    )


def test_default_shapes_are_the_serving_calibration_models_block() -> None:
    """The curve is measured on the GEMMs the engine fit then sees (calibrate --serve's model)."""
    from mlcost.calibrate.serve import CALIBRATION_MODEL as M

    assert (M.d_model, M.d_ff) == (microbench.STREAM_D_MODEL, microbench.STREAM_D_FF)
    assert M.mlp == "swiglu"  # gated: gate and up projections
