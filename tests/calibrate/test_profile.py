from __future__ import annotations

from pathlib import Path

import pytest

from mlcost import context
from mlcost.calibrate.fit import initial_profile, local_device
from mlcost.calibrate.microbench import MicrobenchResult
from mlcost.calibrate.profile import (
    Calibration,
    load_calibration,
    load_local_profile,
    rescale_profile,
    save_calibration,
)
from mlcost.catalog import builtin_catalog as get_catalog
from mlcost.catalog import detect_host, match_cpu_row
from mlcost.estimate import estimate_train
from mlcost.spec import Cluster, ModelSpec, TrainJob


def _calibration(mb: MicrobenchResult) -> Calibration:
    base = get_catalog().device("cpu-epyc-2vcpu")
    dev = local_device(mb, base, date="2026-11-23")
    prof = initial_profile(mb, get_catalog().efficiency("default-cpu"), date="2026-11-23").replace(
        layer_overhead_s=0.001, framework_overhead_bytes=5e7
    )
    return Calibration(
        device=dev,
        profile=prof,
        base_device=base.id,
        base_profile=rescale_profile(prof, dev, base),
        provenance={"host": "test", "host_cpu": detect_host().identity()},
        microbench=mb.to_dict(),
    )


def test_save_load_round_trip(fake_microbench: MicrobenchResult, profile_dir: Path) -> None:
    cal = _calibration(fake_microbench)
    save_calibration(cal, profile_dir)
    assert (profile_dir / "profile.toml").is_file()
    back = load_calibration(profile_dir)
    assert back is not None
    assert back.device == cal.device
    assert back.profile == cal.profile
    assert MicrobenchResult.from_dict(back.microbench).peak_flops_per_s("float32") == pytest.approx(
        fake_microbench.peak_flops_per_s("float32")
    )
    local = load_local_profile(profile_dir)
    assert local is not None
    assert local.source == "calibrated (mlcost calibrate, 2026-11-23)"
    assert local.peak_flops_per_s["fp32"] == pytest.approx(cal.device.peak_flops_per_s["fp32"])


def test_uncalibrated(profile_dir: Path) -> None:
    assert load_local_profile(profile_dir) is None
    assert context.local_calibration() is None
    from mlcost.errors import UnknownNameError

    with pytest.raises(UnknownNameError):
        context.default_catalog().device("local")


def test_device_local_resolves_after_calibration(
    fake_microbench: MicrobenchResult, profile_dir: Path
) -> None:
    cal = _calibration(fake_microbench)
    save_calibration(cal, profile_dir)
    cat = context.default_catalog()
    dev = cat.device("local")
    assert dev.peak_flops_per_s["fp32"] == pytest.approx(cal.device.peak_flops_per_s["fp32"], rel=1e-9)
    assert cat.efficiency("local").layer_overhead_s == pytest.approx(0.001)
    # the matched catalog row gets the fit too, re-expressed against its own peaks
    base = cat.efficiency("cpu-epyc-2vcpu")
    assert base.device == "cpu-epyc-2vcpu" and base.layer_overhead_s == pytest.approx(0.001)
    spec = ModelSpec(name="t", n_layers=2, d_model=128, n_heads=2, d_ff=512, vocab_size=1024, max_seq_len=128)
    job = TrainJob(tokens=4 * 128, seq_len=128, global_batch=4, micro_batch=4, precision="fp32")
    est = estimate_train(spec, job, Cluster(device="local"), catalog=cat)
    assert est.error_band.source.startswith("efficiency profile local")
    on_row = estimate_train(spec, job, Cluster(device="cpu-epyc-2vcpu"), catalog=cat)
    assert on_row.step_time_s == pytest.approx(est.step_time_s, rel=0.02)


def _edge_facts() -> object:
    """What the CLI hands a measured run: the edge's catalog and this host's saved calibration."""
    from mlcost.measure.runner import RunFacts

    return RunFacts(catalog=context.default_catalog(), calibration=context.local_calibration())


def test_runner_mfu_uses_calibrated_peak(fake_microbench: MicrobenchResult, profile_dir: Path) -> None:
    from mlcost.measure.runner import mfu_peak

    save_calibration(_calibration(fake_microbench), profile_dir)
    peak, source = mfu_peak("cpu", "fp32", _edge_facts())  # type: ignore[arg-type]
    assert peak == pytest.approx(fake_microbench.peak_flops_per_s("float32"))
    assert "calibrated (mlcost calibrate, 2026-11-23)" in source


def test_runner_prediction_uses_local_once_calibrated(
    fake_microbench: MicrobenchResult, profile_dir: Path
) -> None:
    """`mlcost measure`'s `predicted` block: the catalog row before calibration, `local` after; its memory
    is the estimator's per-device total."""
    from mlcost.measure.runner import TrainShape, predict_train

    spec = ModelSpec(name="t", n_layers=2, d_model=128, n_heads=2, d_ff=512, vocab_size=1024, max_seq_len=128)
    shape = TrainShape(micro_batch=4, seq_len=128, precision="fp32")
    before = predict_train(spec, shape, "cpu", 1, "fp32", 5, _edge_facts())  # type: ignore[arg-type]
    assert before["device"] == match_cpu_row(context.default_catalog(), detect_host()).device.id  # type: ignore[union-attr]
    assert before["step_time_s"] > 0
    save_calibration(_calibration(fake_microbench), profile_dir)
    after = predict_train(spec, shape, "cpu", 1, "fp32", 5, _edge_facts())  # type: ignore[arg-type]
    assert after["device"] == "local"
    job = TrainJob(
        tokens=4 * 128 * 5,
        seq_len=128,
        global_batch=4,
        micro_batch=4,
        precision="fp32",
        flash_attention=True,
        fused_elementwise=False,
    )
    est = estimate_train(spec, job, Cluster(device="local"), catalog=context.default_catalog())
    assert after["step_time_s"] == pytest.approx(est.step_time_s)
    assert after["peak_memory_bytes"] == pytest.approx(est.memory.total)


def test_measured_first_touch_rate_reaches_device_local(
    fake_microbench: MicrobenchResult, profile_dir: Path
) -> None:
    """The first-touch microbenchmark is saved as a profile extra and prices the page faults of an eager
    CPU estimate with --device local (a large-vocabulary model: its embedding is >= 32 MiB)."""
    import dataclasses

    from mlcost.calibrate.runs import RunConfig

    mb = dataclasses.replace(fake_microbench, first_touch_bytes_per_s=2.5e9)
    assert MicrobenchResult.from_dict(mb.to_dict()).first_touch_bytes_per_s == 2.5e9
    cal = _calibration(mb)
    assert cal.profile.extra == {"first_touch_bytes_per_s": 2.5e9, "copy_bytes_per_s": mb.copy_bytes_per_s}
    save_calibration(cal, profile_dir)
    cat = context.default_catalog()
    assert cat.efficiency("local").extra["first_touch_bytes_per_s"] == 2.5e9
    rc = RunConfig(family="gpt2", n_layers=1, d_model=768, seq_len=96, micro_batch=2, vocab_size=50257)
    est = estimate_train(rc.spec(), rc.job(), Cluster(device="local"), catalog=cat)
    assert est.time_breakdown_s["page_faults_s"] > 0.1  # ≈ 0.7 GiB of fresh pages at 2.5 GB/s


def test_optimizer_stream_is_capped_at_the_copy_rate(
    fake_microbench: MicrobenchResult, profile_dir: Path
) -> None:
    """The local device's bandwidth is the GEMV rate (about twice a read+write copy); the optimizer streams
    parameter-sized arrays and is capped at the copy rate the profile keeps as an extra: where the cap binds,
    halving that rate doubles the optimizer's time and leaves the rest of the step alone."""
    import dataclasses

    from mlcost.calibrate.runs import RunConfig

    rc = RunConfig(family="gpt2", n_layers=2, d_model=256, seq_len=64, micro_batch=2, vocab_size=8192)
    times = []
    slow = fake_microbench.copy_bytes_per_s / 100  # far below the element-wise rate: the cap binds
    for copy in (slow, slow / 2, fake_microbench.copy_bytes_per_s * 100):
        mb = dataclasses.replace(
            fake_microbench, copy_bytes_per_s=copy, gemv_bytes_per_s=4 * fake_microbench.copy_bytes_per_s
        )
        save_calibration(_calibration(mb), profile_dir)
        context.invalidate()
        est = estimate_train(rc.spec(), rc.job(), Cluster(device="local"), catalog=context.default_catalog())
        times.append(est.time_breakdown_s)
    assert times[1]["optimizer_s"] == pytest.approx(2 * times[0]["optimizer_s"], rel=1e-6)
    for key in ("matmul_s", "attention_s", "memory_bound_s"):
        assert times[1][key] == pytest.approx(times[0][key], rel=1e-9)
    # a copy rate above the element-wise stream caps nothing: the optimizer runs at mem_bw_eff x bandwidth
    assert times[2]["optimizer_s"] < times[0]["optimizer_s"] / 10
