"""plan_train against brute-force enumeration with estimate_train, the estimator's own numbers on the top
plans, monotonicity properties (hypothesis) and infeasibility explanations."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlcost.catalog import get_catalog
from mlcost.errors import SpecError
from mlcost.estimate import estimate_train
from mlcost.plan.train import TrainConstraints, TrainSearch, plan_specs, plan_train
from mlcost.spec import Cluster, TrainJob

CAT = get_catalog()
GPT2 = CAT.model("gpt2")
SMALL = TrainSearch(
    seq_len=1024,
    global_batch=16,
    precisions=("bf16",),
    tps=(1, 2, 4),
    pps=(1, 2),
    zeros=(0, 3),
    micro_batches=(1, 4),
    recomputes=("none", "full"),
    counts=(1, 2, 4, 8),
)
TOKENS = 2e9


def _rows(device: str, providers: tuple[str, ...]) -> list[tuple[str, str, str]]:
    seen: list[tuple[str, str, str]] = []
    for r in CAT.prices(device=device, pricing="on-demand"):
        key = (r.provider, r.region, r.pricing)
        if r.provider in providers and key not in seen:
            seen.append(key)
    return seen


def brute_force(
    devices: tuple[str, ...], providers: tuple[str, ...], deadline_s: float | None
) -> float | None:
    """Loop over every configuration, call estimate_train, keep what fits and meets the deadline."""
    best: float | None = None
    for dev, count, tp, pp, zero, mb, rc in itertools.product(
        devices,
        SMALL.counts or (),
        SMALL.tps,
        SMALL.pps or (),
        SMALL.zeros,
        SMALL.micro_batches,
        SMALL.recomputes,
    ):
        try:
            job = TrainJob(
                tokens=TOKENS,
                seq_len=1024,
                global_batch=16,
                micro_batch=mb,
                precision="bf16",
                tp=tp,
                pp=pp,
                zero=zero,
                recompute=rc,  # type: ignore[arg-type]
                sequence_parallel=tp > 1,
            )
            if count // (tp * pp) == 1 and zero > 0:
                continue  # ZeRO without data parallelism is ZeRO-0 (the planner lists it once)
            if tp > 8:
                continue
            for provider, region, pricing in _rows(dev, providers):
                est = estimate_train(
                    GPT2,
                    job,
                    Cluster(device=dev, count=count, provider=provider, region=region, pricing=pricing),  # type: ignore[arg-type]
                    catalog=CAT,
                )
                if not est.fits or (deadline_s is not None and est.total_time_s > deadline_s):
                    continue
                assert est.cost_usd is not None
                if best is None or est.cost_usd < best:
                    best = est.cost_usd
        except SpecError:
            continue
    return best


@pytest.mark.parametrize("deadline_s", [None, 3600.0 * 6])
def test_equals_brute_force(deadline_s: float | None) -> None:
    devices, providers = ("a100-80gb", "h100-sxm"), ("aws", "lambda")
    res = plan_train(
        GPT2,
        TOKENS,
        constraints=TrainConstraints(
            devices=devices, providers=providers, deadline_s=deadline_s, max_devices=8
        ),
        search=SMALL,
        catalog=CAT,
    )
    expected = brute_force(devices, providers, deadline_s)
    assert expected is not None
    assert res.status == "ok"
    assert res.plans[0].to_dict()["cost_usd"] == pytest.approx(expected, rel=1e-9)


def test_top_plans_equal_estimate_train() -> None:
    res = plan_train(
        CAT.model("llama-3.1-8b"), 1e11, constraints=TrainConstraints(max_devices=64), catalog=CAT, top=4
    )
    assert len(res.plans) == 4
    for p in [x.to_dict() for x in res.plans]:
        job, cluster = plan_specs(p, 1e11)
        est = estimate_train(CAT.model("llama-3.1-8b"), job, cluster, catalog=CAT)
        assert est.fits and p["fits"]
        for key in ("total_time_s", "cost_usd", "energy_kwh", "co2_kg"):
            assert p[key] == pytest.approx(getattr(est, key), rel=1e-9), key
        assert p["mfu"] == pytest.approx(est.mfu, rel=1e-9)
        assert p["memory_per_device_bytes"] == pytest.approx(est.memory.total, rel=1e-9)


def test_ranked_and_json_contract() -> None:
    res = plan_train(
        GPT2, TOKENS, constraints=TrainConstraints(max_devices=8), search=SMALL, catalog=CAT, top=3
    )
    d = res.to_dict()
    for key in ("plans", "pareto", "assumptions", "price_snapshot_date", "candidates_evaluated"):
        assert key in d
    costs = [p["cost_usd"] for p in d["plans"]]
    assert costs == sorted(costs)
    for p in d["plans"]:
        for key in (
            "device",
            "count",
            "tp",
            "pp",
            "dp",
            "zero",
            "micro_batch",
            "recompute",
            "precision",
            "provider",
            "region",
            "pricing",
            "total_time_s",
            "cost_usd",
            "energy_kwh",
            "co2_kg",
            "fits",
        ):
            assert key in p
        assert p["count"] == p["tp"] * p["pp"] * p["dp"]
    # Pareto: sorted by time, cost strictly falling, contains the cheapest plan's cost.
    times = [p["total_time_s"] for p in d["pareto"]]
    pc = [p["cost_usd"] for p in d["pareto"]]
    assert times == sorted(times)
    assert all(a > b for a, b in itertools.pairwise(pc))
    assert min(pc) == pytest.approx(costs[0])
    assert res.why and "#1" in res.why


@pytest.mark.parametrize(
    "objective,key", [("time", "total_time_s"), ("energy", "energy_kwh"), ("co2", "co2_kg")]
)
def test_other_objectives(objective: str, key: str) -> None:
    res = plan_train(
        GPT2,
        TOKENS,
        constraints=TrainConstraints(max_devices=8),
        search=SMALL,
        catalog=CAT,
        objective=objective,
        top=3,
    )
    vals = [p.to_dict()[key] for p in res.plans]
    assert vals == sorted(vals)


def test_mix_objective_between_extremes() -> None:
    cons = TrainConstraints(max_devices=8, devices=("a100-80gb", "h100-sxm", "l4"))
    cheap = plan_train(GPT2, TOKENS, constraints=cons, search=SMALL, catalog=CAT).plans[0].to_dict()
    fast = (
        plan_train(GPT2, TOKENS, constraints=cons, search=SMALL, catalog=CAT, objective="time")
        .plans[0]
        .to_dict()
    )
    mix = (
        plan_train(
            GPT2,
            TOKENS,
            constraints=cons,
            search=SMALL,
            catalog=CAT,
            objective="mix",
            weights={"cost": 1.0, "time": 1.0},
        )
        .plans[0]
        .to_dict()
    )
    assert cheap["cost_usd"] <= mix["cost_usd"] <= fast["cost_usd"] + 1e-9
    assert fast["total_time_s"] <= mix["total_time_s"] <= cheap["total_time_s"] + 1e-9


DEVICE_POOL = ("a100-80gb", "h100-sxm", "a100-40gb", "l4")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d1=st.floats(600.0, 3600.0 * 48), d2=st.floats(600.0, 3600.0 * 48))
def test_tighter_deadline_never_lowers_best_cost(d1: float, d2: float) -> None:
    tight, loose = sorted((d1, d2))

    def best(deadline: float) -> float:
        res = plan_train(
            GPT2,
            TOKENS,
            constraints=TrainConstraints(max_devices=8, deadline_s=deadline, devices=DEVICE_POOL),
            search=SMALL,
            catalog=CAT,
        )
        return res.plans[0].to_dict()["cost_usd"] if res.plans else math.inf

    assert best(tight) >= best(loose)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    subset=st.sets(st.sampled_from(DEVICE_POOL), min_size=1),
    extra=st.sampled_from(DEVICE_POOL),
    deadline=st.one_of(st.none(), st.floats(1800.0, 3600.0 * 24)),
)
def test_adding_a_device_never_raises_best_cost(subset: set[str], extra: str, deadline: float | None) -> None:
    def best(devs: set[str]) -> float:
        res = plan_train(
            GPT2,
            TOKENS,
            constraints=TrainConstraints(max_devices=8, deadline_s=deadline, devices=tuple(sorted(devs))),
            search=SMALL,
            catalog=CAT,
        )
        return res.plans[0].to_dict()["cost_usd"] if res.plans else math.inf

    assert best(subset | {extra}) <= best(subset)


def test_deadline_infeasible_explains() -> None:
    res = plan_train(
        CAT.model("llama-3.1-8b"),
        1e12,
        constraints=TrainConstraints(deadline_s=2 * 86400, max_devices=64, devices=("h100-sxm",)),
        catalog=CAT,
    )
    assert res.status == "infeasible" and not res.plans
    text = " ".join(res.infeasible)
    assert "nothing meets a 2.0 d deadline" in text
    assert "fastest plan within 64 devices takes" in text
    assert "raise --max-devices to ≥" in text
    # the advised count really meets the deadline
    n = int(text.split("raise --max-devices to ≥ ")[1].split()[0])
    ok = plan_train(
        CAT.model("llama-3.1-8b"),
        1e12,
        constraints=TrainConstraints(deadline_s=2 * 86400, max_devices=n, devices=("h100-sxm",)),
        catalog=CAT,
    )
    assert ok.status == "ok"


def test_memory_infeasible_explains() -> None:
    res = plan_train(
        CAT.model("llama-3.1-8b"),
        1e12,
        constraints=TrainConstraints(max_devices=1, devices=("l4",)),
        catalog=CAT,
    )
    assert res.status == "infeasible"
    assert any(line.startswith("no plan fits in memory on l4") for line in res.infeasible)


def test_budget_and_co2_infeasible_explain() -> None:
    res = plan_train(
        GPT2, TOKENS, constraints=TrainConstraints(max_devices=8, budget_usd=0.01), search=SMALL, catalog=CAT
    )
    assert res.status == "infeasible" and "raise --budget-usd" in res.infeasible[0]
    res = plan_train(
        GPT2, TOKENS, constraints=TrainConstraints(max_devices=8, max_co2_kg=1e-6), search=SMALL, catalog=CAT
    )
    assert res.status == "infeasible" and "raise --max-co2-kg" in res.infeasible[0]


def test_unpriced_devices_are_said() -> None:
    res = plan_train(
        GPT2,
        TOKENS,
        constraints=TrainConstraints(max_devices=8, devices=("h800", "h100-sxm")),
        search=SMALL,
        catalog=CAT,
    )
    assert any("h800" in n and "cannot be ranked by cost" in n for n in res.notes)
    assert all(p.device == "h100-sxm" for p in res.plans)
    # ranked by time, an unpriced device takes part (cost None)
    res = plan_train(
        GPT2,
        TOKENS,
        constraints=TrainConstraints(max_devices=8, devices=("h800",)),
        search=SMALL,
        catalog=CAT,
        objective="time",
    )
    assert res.plans and res.plans[0].to_dict()["cost_usd"] is None


def test_spot_plans_keep_deadline_with_fallback() -> None:
    model = CAT.model("llama-3.1-8b")
    deadline = 20 * 86400.0
    res = plan_train(
        model,
        1e11,
        constraints=TrainConstraints(
            max_devices=64, spot=True, deadline_s=deadline, devices=("h100-sxm", "a100-80gb")
        ),
        catalog=CAT,
        top=5,
    )
    spot = [p.to_dict() for p in res.plans if p.pricing == "spot"]
    assert spot, "spot rows are cheaper: expected a spot plan in the top 5"
    for p in spot:
        s = p["spot"]
        assert p["total_time_s"] <= deadline * (1 + 1e-12)
        assert p["total_time_s"] >= p["estimate"]["total_time_s"]
        assert s["fallback_provider"] is not None
        # the uninterrupted figures are estimate_train's at the spot price
        job, cluster = plan_specs(p, 1e11)
        est = estimate_train(model, job, cluster, catalog=CAT)
        assert p["estimate"]["total_time_s"] == pytest.approx(est.total_time_s, rel=1e-9)
        assert p["estimate"]["cost_usd"] == pytest.approx(est.cost_usd, rel=1e-9)
        assert p["cost_usd"] >= p["estimate"]["cost_usd"] * (1 - 1e-12)


def test_bad_input() -> None:
    with pytest.raises(SpecError):
        plan_train(GPT2, TOKENS, objective="speed", catalog=CAT)
    with pytest.raises(Exception, match="unknown device"):
        plan_train(GPT2, TOKENS, constraints=TrainConstraints(devices=("h1000",)), catalog=CAT)
    with pytest.raises(Exception, match="unknown provider"):
        plan_train(GPT2, TOKENS, constraints=TrainConstraints(providers=("awz",)), catalog=CAT)


def test_long_run_without_deadline_names_the_best_plan_within_30_days() -> None:
    """Without --deadline the cheapest plan can take years on a few cheap devices: the result says so and
    names the best plan within 30 days, which really finishes in time and costs at least as much."""
    model = CAT.model("llama-3.1-8b")
    cons = TrainConstraints(devices=("h100-sxm", "l40s"))
    res = plan_train(model, 1e12, constraints=cons, catalog=CAT)
    assert res.plans[0].total_time_s > 30 * 86400
    (note,) = [n for n in res.notes if n.startswith("no --deadline")]
    assert "within 30.0 d the best is" in note
    bounded = plan_train(
        model, 1e12, constraints=TrainConstraints(devices=cons.devices, deadline_s=30 * 86400), catalog=CAT
    )
    best = bounded.plans[0]
    assert best.total_time_s <= 30 * 86400
    assert f"{best.count} x {best.device}" in note
    assert best.cost_usd is not None and res.plans[0].cost_usd is not None
    assert best.cost_usd >= res.plans[0].cost_usd
    # with a deadline there is nothing to warn about
    assert not any(n.startswith("no --deadline") for n in bounded.notes)
