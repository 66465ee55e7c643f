"""plan_serve: its numbers are estimate_serve's, the fleet covers the demand within the targets, and
infeasible requests explain themselves."""

from __future__ import annotations

import math

import pytest

from mlcost.catalog import get_catalog
from mlcost.errors import SpecError
from mlcost.estimate import estimate_serve
from mlcost.plan.serve import plan_serve
from mlcost.spec import Cluster, ServeJob
from mlcost.units import S_PER_MONTH

CAT = get_catalog()
LLAMA = CAT.model("llama-3.1-8b")


def test_top_plans_equal_estimate_serve_and_cover_demand() -> None:
    res = plan_serve(
        LLAMA, prompt_len=1024, output_len=256, requests_per_s=5, ttft_s=0.5, tpot_s=0.05, catalog=CAT, top=5
    )
    assert res.status == "ok" and len(res.plans) == 5
    demand = 5 * 256
    costs = [p.monthly_cost_usd for p in res.plans]
    assert costs == sorted(costs)
    for p in [x.to_dict() for x in res.plans]:
        job = ServeJob(
            prompt_len=1024,
            output_len=256,
            batch=p["batch"],
            tp=p["tp"],
            weight_precision=p["weight_precision"],
        )
        est = estimate_serve(
            LLAMA,
            job,
            Cluster(
                device=p["device"],
                count=p["tp"],
                provider=p["provider"],
                region=p["region"],
                pricing=p["pricing"],
            ),
            catalog=CAT,
        )
        assert p["ttft_s"] == pytest.approx(est.ttft_s, rel=1e-9)
        assert p["time_per_output_token_s"] == pytest.approx(est.time_per_output_token_s, rel=1e-9)
        assert p["tokens_per_s_per_replica"] == pytest.approx(est.tokens_per_s, rel=1e-9)
        assert p["cost_per_million_output_tokens_at_full_utilisation_usd"] == pytest.approx(
            est.cost_per_million_output_tokens_usd, rel=1e-9
        )
        assert est.fits
        assert p["ttft_s"] <= 0.5 and p["time_per_output_token_s"] <= 0.05
        assert p["replicas"] == math.ceil(demand / p["tokens_per_s_per_replica"])
        assert p["capacity_output_tokens_per_s"] >= demand
        assert 0 < p["utilisation"] <= 1
        assert p["monthly_cost_usd"] == pytest.approx(
            p["devices"] * p["price_usd_per_device_h"] * S_PER_MONTH / 3600
        )
        assert p["cost_per_million_output_tokens_usd"] >= p[
            "cost_per_million_output_tokens_at_full_utilisation_usd"
        ] * (1 - 1e-9)
        assert p["quality_risk"].startswith(
            "none" if p["weight_precision"] in ("bf16", "fp16") else ("low", "medium")
        )


def test_tokens_per_day_equals_requests() -> None:
    a = plan_serve(
        LLAMA, prompt_len=512, output_len=128, requests_per_s=2, catalog=CAT, devices=("a100-80gb",)
    )
    b = plan_serve(
        LLAMA,
        prompt_len=512,
        output_len=128,
        tokens_per_day=2 * 128 * 86400,
        catalog=CAT,
        devices=("a100-80gb",),
    )
    assert a.plans[0].monthly_cost_usd == pytest.approx(b.plans[0].monthly_cost_usd)


def test_only_bf16_and_fp8_devices() -> None:
    res = plan_serve(
        LLAMA,
        prompt_len=512,
        output_len=128,
        requests_per_s=1,
        catalog=CAT,
        weight_precisions=("fp8",),
        devices=("a100-80gb", "h100-sxm"),
        top=50,
    )
    assert {p.device for p in res.plans} == {"h100-sxm"}  # A100 has no fp8 units


def test_infeasible_latency_explains() -> None:
    res = plan_serve(LLAMA, prompt_len=4096, output_len=128, requests_per_s=1, ttft_s=0.001, catalog=CAT)
    assert res.status == "infeasible"
    assert "no plan reaches a time to first token of 1 ms" in res.infeasible[0]
    res = plan_serve(LLAMA, prompt_len=1024, output_len=128, requests_per_s=1, tpot_s=1e-5, catalog=CAT)
    assert res.status == "infeasible" and "raise --tpot-ms" in res.infeasible[0]


def test_nothing_fits_explains() -> None:
    res = plan_serve(
        CAT.model("llama-3.1-405b"),
        prompt_len=1024,
        output_len=128,
        requests_per_s=1,
        devices=("l4",),
        weight_precisions=("bf16",),
        catalog=CAT,
    )
    assert res.status == "infeasible" and "does not fit on l4" in res.infeasible[0]


def test_bad_traffic() -> None:
    with pytest.raises(SpecError):
        plan_serve(LLAMA, prompt_len=10, output_len=10, catalog=CAT)
    with pytest.raises(SpecError):
        plan_serve(LLAMA, prompt_len=10, output_len=10, requests_per_s=1, tokens_per_day=5, catalog=CAT)
