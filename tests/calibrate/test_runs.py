"""Measurements of the calibration runs: saved and re-read, and the memory probes that raise the
microbenchmark's rates (mlcost.calibrate.runs)."""

from __future__ import annotations

import dataclasses

from mlcost.calibrate.microbench import MicrobenchResult
from mlcost.calibrate.runs import Measurement, RunConfig, merge_memory_probes


def _measurement(rounds: list[dict[str, float]]) -> Measurement:
    c = RunConfig(family="llama", n_layers=2, d_model=128, seq_len=64, micro_batch=2, vocab_size=16384)
    return Measurement(
        label=c.label,
        spec=c.spec(),
        job=c.job(),
        step_time_s=0.05,
        peak_delta_bytes=8e7,
        baseline_rss_bytes=3.3e8,
        step_time_min_s=0.04,
        per_round=tuple(rounds),
    )


def test_measurement_round_trip_and_vocab_in_label() -> None:
    m = _measurement([{"step_time_s": 0.05, "probe_copy_bytes_per_s": 1e10}])
    assert m.label == "llama L2 d128 s64 b2 V16384"
    assert Measurement.from_dict(m.to_dict()) == m


def test_copy_probes_raise_the_microbenchmark_rate_never_lower_it(
    fake_microbench: MicrobenchResult,
) -> None:
    mb = dataclasses.replace(fake_microbench, first_touch_bytes_per_s=1e9)  # copy 10e9
    ms = [
        _measurement([{"probe_copy_bytes_per_s": 12e9, "probe_first_touch_bytes_per_s": 0.5e9}]),
        _measurement([{"probe_copy_bytes_per_s": 8e9, "probe_first_touch_bytes_per_s": 3e9}]),
    ]
    merge_memory_probes(mb, ms)
    assert mb.copy_bytes_per_s == 12e9
    assert mb.first_touch_bytes_per_s == 1e9  # recorded, not merged (the runs' refaults are optimistic)
    merge_memory_probes(mb, [_measurement([{}])])  # runs saved before the probes existed change nothing
    assert mb.copy_bytes_per_s == 12e9
