"""Acceptance: every plan carries the `mlcost estimate train` command that reproduces it (top 5 re-run through
the CLI, cost and time within 0.1%); the emissions objective picks a priced low-carbon region; estimate
works in any imported region; one set of defaults across estimate and plan."""

from __future__ import annotations

import json
import shlex

import pytest

from mlcost.catalog import get_catalog
from mlcost.cli.main import main
from mlcost.plan.defaults import train_defaults
from mlcost.plan.train import TrainConstraints, plan_train

CAT = get_catalog()
LLAMA = CAT.model("llama-3.1-8b")


@pytest.fixture(scope="module")
def cost_plans():  # type: ignore[no-untyped-def]
    return plan_train(LLAMA, 1e12, catalog=CAT)


def _estimate(capsys: pytest.CaptureFixture[str], command: str) -> dict:  # type: ignore[type-arg]
    argv = shlex.split(command)
    assert argv[:3] == ["mlcost", "estimate", "train"]
    capsys.readouterr()
    assert main([*argv[1:], "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_top5_commands_reproduce_cost_and_time(cost_plans, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    assert len(cost_plans.plans) == 5
    for p in cost_plans.plans:
        est = _estimate(capsys, p.command)
        assert est["total_time_s"] == pytest.approx(p.total_time_s, rel=1e-3), p.command
        assert est["cost_usd"] == pytest.approx(p.cost_usd, rel=1e-3), p.command
        assert est["co2_kg"] == pytest.approx(p.co2_kg, rel=1e-3), p.command


def test_plan_and_estimate_share_defaults(cost_plans, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    d = train_defaults(LLAMA)
    assert (cost_plans.seq_len, cost_plans.global_batch) == (d.seq_len, d.global_batch)
    capsys.readouterr()
    assert main(["estimate", "train", "--model", "llama-3.1-8b", "--tokens", "1e12", "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert (est["config"]["job"]["seq_len"], est["config"]["job"]["global_batch"]) == (
        d.seq_len,
        d.global_batch,
    )
    names = {a["name"]: a for a in cost_plans.to_dict()["assumptions"]}
    assert names["seq_len"]["value"] == d.seq_len and "default rule" in names["seq_len"]["source"]


def test_co2_objective_picks_a_priced_low_carbon_region() -> None:
    res = plan_train(LLAMA, 1e12, objective="co2", catalog=CAT)
    best = res.plans[0]
    assert best.cost_usd is not None and best.price_usd_per_device_h is not None
    assert best.carbon != "no carbon data"
    assert best.carbon_kg_per_kwh <= 0.05, (best.provider, best.region, best.carbon_kg_per_kwh)


def test_estimate_in_an_imported_region(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["estimate", "train", "--model", "llama-3.1-8b", "--tokens", "1e12", "--provider", "aws"]
    assert main([*argv, "--region", "eu-north-1", "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    price = next(a for a in est["assumptions"] if a["name"] == "price_usd_per_device_h")
    assert price["value"] == pytest.approx(58.8928 / 8)  # p5.48xlarge eu-north-1 in the snapshot
    assert main([*argv, "--region", "eu-nort-1"]) == 2
    assert "did you mean 'eu-north-1'" in capsys.readouterr().err


def test_single_marketplace_offers_cap_the_device_count(cost_plans) -> None:  # type: ignore[no-untyped-def]
    """A Vast row is one host's offer (the snapshot lists one offer per row): no plan uses more devices
    than the offer has."""
    from mlcost.plan.prices import offer_devices

    res = plan_train(LLAMA, 1e12, constraints=TrainConstraints(providers=("vast",)), catalog=CAT, top=5)
    assert res.plans
    for p in [*res.plans, *res.pareto]:
        assert p.count <= offer_devices(p.provider, p.instance or ""), (p.count, p.instance)


def test_framework_family_plans_reproduce_with_the_same_profile(capsys: pytest.CaptureFixture[str]) -> None:
    """``--framework nemo``: H100 plans are scored with the h100-sxm/nemo row and their commands carry
    ``--framework nemo`` (the estimate reproduces them); a device without a nemo row keeps its own profile,
    and the assumptions say so."""
    from mlcost.plan.train import TrainSearch

    model = CAT.model("llama-3.1-70b")
    res = plan_train(
        model,
        1e12,
        constraints=TrainConstraints(devices=("h100-sxm", "l40s")),
        search=TrainSearch(framework="nemo"),
        top=3,
        catalog=CAT,
    )
    plain = plan_train(model, 1e12, constraints=TrainConstraints(devices=("h100-sxm",)), top=1, catalog=CAT)
    h100 = [p for p in res.plans if p.device == "h100-sxm"]
    assert h100 and all(p.efficiency_profile == "h100-sxm/nemo" for p in h100)
    assert plain.plans[0].efficiency_profile == "h100-sxm"
    for p in h100:
        assert "--framework nemo" in p.command
        est = _estimate(capsys, p.command)
        assert est["total_time_s"] == pytest.approx(p.total_time_s, rel=1e-3), p.command
    names = {a["name"]: a for a in res.to_dict()["assumptions"]}
    assert names["efficiency_profile[h100-sxm]"]["value"] == "h100-sxm/nemo"
    assert "nemo runs" in names["efficiency_profile[h100-sxm]"]["source"]
    assert "no nemo profile for l40s" in names["efficiency_profile[l40s]"]["value"]


def test_unknown_framework_family_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "train", "--model", "gpt2", "--tokens", "1e9", "--framework", "nemoo"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "did you mean 'nemo'" in err, err
