"""The hf engine fit: it recovers known parameters from iterations timed by the simulator's own cost
(plus noise and a neighbour's hiccups), the fitted row is saved as an [[engine]] override the catalog
resolves for ``local``, and (slow) a real calibration load on transformers' continuous batching fits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mlcost.calibrate.profile import Calibration, load_calibration, render_toml, save_calibration
from mlcost.calibrate.serve import (
    CALIBRATION_MODEL,
    HF_CPU_START,
    EngineFit,
    engine_predictor,
    fit_engine,
    fitted_engine,
)
from mlcost.catalog import builtin_catalog
from mlcost.catalog.loader import get_catalog
from mlcost.measure.serve_load import IterationTiming

TRUE = {
    "iteration_overhead_s": 8e-3,
    "per_seq_overhead_s": 1.5e-3,
    "matmul_eff_scale": 0.7,
    "decode_mem_bw_eff": 0.9,
}


def _hardware() -> tuple:
    cat = builtin_catalog()
    device = dataclasses.replace(
        cat.device("cpu-epyc-2vcpu"), id="local", peak_flops_per_s={"fp32": 100e9}, mem_bw_bytes_per_s=20e9
    )
    profile = dataclasses.replace(cat.efficiency("default-cpu"), device="local")
    return device, profile, cat.engine_profile("hf", device)


def _iterations(n: int, seed: int) -> list[IterationTiming]:
    """A mix like a real load's: decode batches 1-16, some with a prefill chunk of 64-256 tokens."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        dec = int(rng.integers(0, 17))
        chunks = [64] * int(rng.integers(0 if dec else 1, 5)) if rng.random() < 0.3 or not dec else []
        ctx = int(dec * rng.integers(64, 96))
        out.append(
            IterationTiming(
                start_s=0.0,
                end_s=1.0,  # replaced below
                seqs=dec + len(chunks),
                decode_seqs=dec,
                prefill_tokens=sum(chunks),
                context_tokens=ctx,
                decode_ctx_tokens=ctx,
                prefill_pairs=float(sum(c * (c + 1) / 2 for c in chunks)),
            )
        )
    return out


def test_fit_recovers_the_parameters_despite_noise_and_outliers() -> None:
    device, profile, base = _hardware()
    its = _iterations(300, seed=1)
    true_s = engine_predictor(CALIBRATION_MODEL, device, profile, base, its)(TRUE)
    noise = np.random.default_rng(2).lognormal(0.0, 0.03, len(its))
    noise[::25] *= 3.0  # a busy neighbour: every 25th iteration three times slower
    timed = [dataclasses.replace(i, end_s=float(t)) for i, t in zip(its, true_s * noise, strict=True)]
    fit = fit_engine(
        timed, engine_predictor(CALIBRATION_MODEL, device, profile, base, timed), dict(HF_CPU_START)
    )
    for name, value in TRUE.items():
        assert fit.params[name] == pytest.approx(value, rel=0.15), name
    assert fit.median_abs_rel < 0.05 and fit.iterations == 300


def test_too_few_iterations_is_an_error() -> None:
    device, profile, base = _hardware()
    its = [dataclasses.replace(i, end_s=0.05) for i in _iterations(3, seed=3)]
    with pytest.raises(ValueError, match="too few"):
        fit_engine(its, engine_predictor(CALIBRATION_MODEL, device, profile, base, its))


def test_the_fitted_engine_is_saved_and_resolved_for_local(tmp_path) -> None:  # type: ignore[no-untyped-def]
    device, profile, base = _hardware()
    fit = EngineFit(params=dict(TRUE), iterations=300, median_abs_rel=0.04, total_time_rel=0.01)
    engine = fitted_engine(base, device, fit, date="2026-12-01")
    assert engine.fitted and engine.device == "local" and engine.engine == "hf"
    cal = Calibration(device=device, profile=profile, engine=engine, serve={"capacity_rps": 4.2})
    assert "[[engine]]" in render_toml(cal)
    save_calibration(cal, tmp_path)
    back = load_calibration(tmp_path)
    assert back is not None and back.engine == engine and back.serve == {"capacity_rps": 4.2}
    cat = get_catalog([tmp_path / "profile.toml"])
    row = cat.engine_profile("hf", "local")
    assert row.iteration_overhead_s == pytest.approx(8e-3) and row.decode_mem_bw_eff == pytest.approx(0.9)
    # other CPUs keep the default (hf, cpu) row
    assert cat.engine_profile("hf", "cpu-epyc-2vcpu") == builtin_catalog().engine_profile(
        "hf", "cpu-epyc-2vcpu"
    )


@pytest.mark.slow
def test_a_real_calibration_load_fits_the_engine() -> None:
    pytest.importorskip("transformers")
    from mlcost.calibrate.serve import BURSTS, calibrate_hf_engine
    from mlcost.measure.serve_load import EngineSettings, HfEngine
    from mlcost.measure.torch_models import build_model
    from tests.measure.test_runner_specs import TINY_LLAMA

    device, profile, base = _hardware()
    settings = EngineSettings(max_batch_tokens=64, max_seqs=16, page_size=16, num_blocks=128)
    with HfEngine(build_model(TINY_LLAMA, seed=0), settings) as engine:
        cal = calibrate_hf_engine(
            engine, TINY_LLAMA, device, profile, base, prompt_len=12, output_len=6, poisson_requests_n=8
        )
    assert len(cal.loads) == len(BURSTS) + 1
    assert sum(len(r.requests) for r in cal.loads) == sum(BURSTS) + 8
    assert cal.engine.fitted and cal.capacity_rps > 0
    assert cal.fit.iterations == sum(len(r.iterations) for r in cal.loads)
    assert cal.to_dict()["engine"]["device"] == "local"
