"""View of ``mlcost tco`` from ``TcoResult.to_dict()`` (docs/tco.md)."""

from __future__ import annotations

from typing import Any

from mlcost.report import format as f
from mlcost.report.common import assumptions_table, key_assumptions
from mlcost.report.view import Table, View

_ROLE_LABEL = {"compute-optimal": "chinchilla", "inference-aware": "inf-aware"}
KEY_ASSUMPTIONS = (
    "scaling_law",
    "train_layout",
    "serve_config",
    "train.price_usd_per_device_h",
    "serve.price_usd_per_device_h",
    "serve.utilisation",
)


def _tpd(x: float) -> str:
    return f.count(x, "tokens/day")


def view(d: dict[str, Any]) -> View:
    """The candidates (train + serve cost), the cheapest, the break-even traffic; --explain adds energy,
    CO2, train/serve detail and every assumption."""
    v = View()
    law = d["scaling_law"]
    target = f" {d['target_loss']:g}" if d["target_loss"] is not None else ""
    v.line(
        f"TCO over {f.duration(d['horizon_s'])} of serving at {_tpd(d['traffic']['output_tokens_per_day'])} "
        f"({d['mode']}{target}, {law['name']} law)",
        "bold",
    )
    revenue = d["revenue_per_million_tokens_usd"] is not None
    cols = ["model", "role", "params", "train tokens", "loss", "train $", "serve $", "total $"]
    if revenue:
        cols += ["NPV $", "ROI"]
    t = v.table(Table("Candidates (* cheapest)", cols, right=tuple(cols[2:])))
    x = v.table(
        Table(
            "Detail",
            [
                "model",
                "tok/param",
                "train time",
                "serve $/M",
                "energy",
                "CO2e",
                "train devices",
                "serve TP×batch",
            ],
            right=("tok/param", "train time", "serve $/M", "energy", "CO2e", "train devices"),
            explain=True,
        )
    )
    for c in d["candidates"]:
        mark = " *" if c["name"] == d["cheapest"] else ""
        row = [
            c["name"] + mark,
            _ROLE_LABEL.get(c["role"], c["role"]),
            f.count(c["params"]),
            f.count(c["train_tokens"]),
            f"{c['predicted_loss']:.4f}",
            f.money(c["train_cost_usd"]),
            f.money(c["serve_cost_usd"]),
            f.money(c["total_cost_usd"]) if c["feasible"] else f"infeasible: {c['reason']}",
        ]
        if revenue:
            row += [f.money(c["npv_usd"]), f.pct(c["roi"], signed=True)]
        t.add(*row)
        tr, sv = c.get("train") or {}, c.get("serve") or {}
        x.add(
            c["name"],
            f.number(c["tokens_per_param"]),
            f.duration(c["train_time_s"]),
            f.money(c["serve_cost_per_million_output_tokens_usd"]),
            f.energy_kwh(c["total_energy_kwh"]),
            f.co2_kg(c["total_co2_kg"]),
            tr.get("devices", "-"),
            f"{sv['tp']}×{sv['batch']}" if sv else "-",
        )
    if d["cheapest"] is None:
        v.line("no candidate is feasible", "red")
    else:
        best = next(c for c in d["candidates"] if c["name"] == d["cheapest"])
        v.line(f"cheapest at this traffic: {best['name']} ({f.money(best['total_cost_usd'])} total)", "bold")
        if d["break_even"]:
            v.line("break-even (where the cheapest choice changes as traffic grows):")
            for b in d["break_even"]:
                v.line(
                    f"  below {_tpd(b['output_tokens_per_day'])} {b['cheaper_below']} is cheaper; above it, "
                    f"{b['cheaper_above']} (both {f.money(b['total_cost_usd'])} there)"
                )
        else:
            v.line(f"{best['name']} is the cheapest at every traffic level (no break-even)")
        roles = {c["role"]: c["name"] for c in d["candidates"] if c["feasible"]}
        pair = {roles.get("compute-optimal"), roles.get("inference-aware")}
        for b in d["crossovers"]:
            if {b["cheaper_below"], b["cheaper_above"]} == pair and None not in pair:
                v.line(
                    f"compute-optimal vs inference-aware: below {_tpd(b['output_tokens_per_day'])} "
                    f"{b['cheaper_below']} is cheaper; above it, {b['cheaper_above']}"
                )
        c_opt = roles.get("compute-optimal")
        if c_opt and c_opt != best["name"]:
            other = next(c for c in d["candidates"] if c["name"] == c_opt)
            saved = float(other["total_cost_usd"] or 0.0) - float(best["total_cost_usd"] or 0.0)
            v.line(
                f"{best['name']} saves {f.money(saved)} against the compute-optimal {c_opt} over "
                f"{f.duration(d['horizon_s'])}"
            )
    key_assumptions(v, d["assumptions"], KEY_ASSUMPTIONS)
    assumptions_table(v, d["assumptions"])
    return v
