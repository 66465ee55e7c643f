"""TCO: totals are the estimator's numbers times traffic and time; break-even traffic makes totals equal;
the cheapest-by-traffic envelope agrees with brute force; NPV/ROI; infeasible candidates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlcost.catalog import get_catalog
from mlcost.errors import SpecError
from mlcost.estimate import estimate_serve, estimate_train
from mlcost.finance import (
    HOFFMANN,
    Candidate,
    ServeSetup,
    Traffic,
    TrainSetup,
    model_for_params,
    target_loss_candidates,
    tco,
)
from mlcost.spec import Cluster, ServeJob, TrainJob
from mlcost.units import S_PER_DAY, S_PER_YEAR

TRAIN = TrainSetup(cluster=Cluster(device="h100-sxm", count=64), seq_len=2048, global_batch=512)
SERVE = ServeSetup(cluster=Cluster(device="h100-sxm"))


@pytest.fixture(scope="module")
def small_models():
    return [model_for_params(1e9, name="m-1b"), model_for_params(3e9, name="m-3b")]


def _run(cands, tokens_per_day: float, **kw):
    return tco(
        cands,
        law=HOFFMANN,
        traffic=Traffic(output_tokens_per_day=tokens_per_day, prompt_len=512, output_len=128),
        horizon_s=S_PER_YEAR,
        train=TRAIN,
        serve=SERVE,
        **kw,
    )


@pytest.fixture(scope="module")
def loss_mode():
    """Target-loss mode: 1B trained long vs 3B trained short, same predicted loss."""
    cat = get_catalog()
    models = [model_for_params(1.5e9, name="m-1.5b"), model_for_params(4e9, name="m-4b")]
    traffic = Traffic(output_tokens_per_day=1e9, prompt_len=512, output_len=128)
    cands = target_loss_candidates(HOFFMANN, 2.3, traffic=traffic, horizon_s=S_PER_YEAR, models=models)
    return cands, tco(
        cands,
        law=HOFFMANN,
        traffic=traffic,
        horizon_s=S_PER_YEAR,
        train=TRAIN,
        serve=SERVE,
        target_loss=2.3,
        catalog=cat,
    )


def test_totals_are_estimator_calls(loss_mode) -> None:
    cands, result = loss_mode
    for cand, c in zip(cands, result.candidates, strict=True):
        assert c.feasible and c.train is not None and c.serve is not None
        job = TrainJob.from_dict(c.train.config["job"])
        t = estimate_train(cand.model, job, Cluster(device="h100-sxm", count=64))
        assert job.tokens == cand.train_tokens
        s = estimate_serve(
            cand.model,
            ServeJob.from_dict(c.serve.config["job"]),
            Cluster(device="h100-sxm", count=c.serve.devices),
        )
        assert t.fits and s.fits
        tokens_m = 1e9 * 365 / 1e6
        assert c.train_cost_usd == pytest.approx(t.cost_usd, rel=1e-12)
        assert c.serve_cost_usd == pytest.approx(s.cost_per_million_output_tokens_usd * tokens_m, rel=1e-12)
        assert c.total_cost_usd == pytest.approx(
            t.cost_usd + s.cost_per_million_output_tokens_usd * tokens_m, rel=1e-12
        )
        assert c.total_energy_kwh == pytest.approx(
            t.energy_kwh + s.energy_kwh_per_million_output_tokens * tokens_m
        )
        assert c.total_co2_kg == pytest.approx(t.co2_kg + s.co2_kg_per_million_output_tokens * tokens_m)
        assert c.predicted_loss == pytest.approx(2.3, rel=1e-9)
        assert c.train_flops == pytest.approx(6 * c.params * c.train_tokens)
        # D_inf counts prompt and output tokens: (512 + 128) / 128 = 5 per output token.
        assert c.inference_tokens == pytest.approx(1e9 * 365 * 5)


def test_layout_choice_fits_and_is_fastest(loss_mode) -> None:
    _, result = loss_mode
    c = result.candidates[1]
    assert c.train is not None and c.train.fits
    best = c.train.total_time_s
    # No other TP (same ZeRO/recompute) is faster and fits.
    job = TrainJob.from_dict(c.train.config["job"])
    for tp in (1, 2, 4, 8):
        try:
            alt = estimate_train(
                model_for_params(4e9, name="m-4b"),
                job.replace(tp=tp, sequence_parallel=tp > 1),
                Cluster(device="h100-sxm", count=64),
            )
        except SpecError:
            continue
        if alt.fits:
            assert alt.total_time_s >= best * (1 - 1e-12)


def test_break_even_totals_are_equal(loss_mode) -> None:
    """At the reported traffic the two candidates' totals are equal — recomputed from scratch."""
    cands, result = loss_mode
    assert result.crossovers
    for b in result.break_even + result.crossovers:
        again = tco(
            cands,
            law=HOFFMANN,
            traffic=Traffic(output_tokens_per_day=b.output_tokens_per_day, prompt_len=512, output_len=128),
            horizon_s=S_PER_YEAR,
            train=TRAIN,
            serve=SERVE,
            target_loss=2.3,
        )
        lo, hi = again.candidate(b.cheaper_below), again.candidate(b.cheaper_above)
        assert lo.total_cost_usd == pytest.approx(hi.total_cost_usd, rel=1e-9)
        assert lo.total_cost_usd == pytest.approx(b.total_cost_usd, rel=1e-9)
        below = b.output_tokens_per_day * 0.5
        assert lo.total_at(below, S_PER_YEAR) < hi.total_at(below, S_PER_YEAR)


def test_same_data_smaller_model_is_cheaper_everywhere(small_models) -> None:
    """Same tokens for both: the 1B costs less to train and to serve, so no break-even at positive traffic."""
    result = _run([Candidate(model=m, train_tokens=200e9) for m in small_models], 1e9)
    assert result.cheapest == "m-1b"
    assert result.break_even == []


def test_envelope_matches_brute_force(loss_mode) -> None:
    """Quality target: the bigger model trains cheaper (fewer tokens) but serves dearer; the envelope's
    hand-overs are exactly where the brute-force cheapest changes on a traffic grid."""
    _, result = loss_mode
    assert len(result.break_even) == 1
    b = result.break_even[0]
    assert (b.cheaper_below, b.cheaper_above) == ("m-4b", "m-1.5b")
    for t in np.geomspace(b.output_tokens_per_day / 100, b.output_tokens_per_day * 100, 41):
        totals = {c.name: c.total_at(float(t), S_PER_YEAR) for c in result.candidates}
        expect = b.cheaper_below if t < b.output_tokens_per_day else b.cheaper_above
        if not math.isclose(t, b.output_tokens_per_day, rel_tol=1e-9):
            assert min(totals, key=totals.__getitem__) == expect


def test_npv_roi_payback(small_models) -> None:
    cands = [Candidate(model=m, train_tokens=200e9) for m in small_models]
    r0 = _run(cands, 1e9, revenue_per_million_tokens_usd=2.0)
    c = r0.candidate("m-1b")
    assert c.revenue_usd == pytest.approx(2.0 * 365e3)
    # No discounting: NPV is revenue minus cost (30-day months, 12.17 of them over 365 days).
    assert c.npv_usd == pytest.approx(c.revenue_usd - c.total_cost_usd, rel=1e-9)
    assert c.roi == pytest.approx((c.revenue_usd - c.total_cost_usd) / c.total_cost_usd)
    margin_per_s = (2.0 - c.serve_cost_per_million_output_tokens_usd) * 1e9 / 1e6 / S_PER_DAY
    assert c.payback_s == pytest.approx(c.train_cost_usd / margin_per_s)
    r8 = _run(cands, 1e9, revenue_per_million_tokens_usd=2.0, discount_rate=0.08)
    d = r8.candidate("m-1b")
    assert d.npv_usd < c.npv_usd  # a positive margin discounted is worth less
    assert d.present_value_cost_usd < c.total_cost_usd
    assert d.present_value_cost_usd > c.train_cost_usd


def test_infeasible_candidate_is_reported_not_ranked() -> None:
    big = get_catalog().model("llama-3.1-405b")
    small = model_for_params(1e9, name="m-1b")
    result = tco(
        [Candidate(model=big, train_tokens=1e9), Candidate(model=small, train_tokens=1e9)],
        law=HOFFMANN,
        traffic=Traffic(output_tokens_per_day=1e8),
        horizon_s=S_PER_YEAR,
        train=TrainSetup(cluster=Cluster(device="h100-sxm", count=1)),
        serve=ServeSetup(cluster=Cluster(device="h100-sxm"), tp=1),
    )
    c = result.candidate("llama-3.1-405b")
    assert not c.feasible and c.total_cost_usd is None and "fits" in (c.reason or "")
    assert result.cheapest == "m-1b"
    assert result.break_even == [] and result.crossovers == []
    assert result.to_dict()["candidates"][0]["feasible"] is False


def test_tpot_target_limits_the_batch(small_models) -> None:
    cands = [Candidate(model=small_models[1], train_tokens=100e9)]
    free = _run(cands, 1e9).candidates[0].serve
    assert free is not None
    target = free.time_per_output_token_s * 0.8
    tco_r = tco(
        cands,
        law=HOFFMANN,
        traffic=Traffic(output_tokens_per_day=1e9, prompt_len=512, output_len=128),
        horizon_s=S_PER_YEAR,
        train=TRAIN,
        serve=ServeSetup(cluster=SERVE.cluster, tpot_target_s=target),
    )
    s = tco_r.candidates[0].serve
    assert s is not None and s.time_per_output_token_s <= target
    assert s.config["job"]["batch"] <= 64


def test_bad_inputs(small_models) -> None:
    with pytest.raises(SpecError, match="no candidate"):
        _run([], 1e9)
    c = Candidate(model=small_models[0], train_tokens=1e9)
    with pytest.raises(SpecError, match="repeat"):
        _run([c, c], 1e9)
    with pytest.raises(SpecError, match="discount"):
        _run([c], 1e9, discount_rate=-0.1)
    with pytest.raises(SpecError):
        Traffic(output_tokens_per_day=-1.0)
    with pytest.raises(SpecError, match="precision"):
        TrainSetup(cluster=TRAIN.cluster, precision="fp12")  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="cannot reach"):
        target_loss_candidates(
            HOFFMANN,
            2.0,
            traffic=Traffic(output_tokens_per_day=1.0),
            horizon_s=S_PER_YEAR,
            models=small_models,
        )


def test_default_sweep_roles() -> None:
    cands = target_loss_candidates(
        HOFFMANN, 2.1, traffic=Traffic(output_tokens_per_day=1e9), horizon_s=S_PER_YEAR
    )
    roles = [c.role for c in cands]
    assert roles.count("compute-optimal") == 1 and roles.count("inference-aware") == 1
    assert len({c.model.name for c in cands}) == len(cands)
    opt = next(c for c in cands if c.role == "compute-optimal")
    ia = next(c for c in cands if c.role == "inference-aware")
    assert ia.train_tokens > opt.train_tokens  # over-trained smaller model
