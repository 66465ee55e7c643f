"""Views of ``plan train`` and ``plan serve`` results, from their ``to_dict()`` (docs/plan.md)."""

from __future__ import annotations

from typing import Any

from mlcost.report import format as f
from mlcost.report.common import assumptions_table, key_assumptions
from mlcost.report.view import Table, View

#: Plan-level assumptions shown in the default view (the rest, and per-device rows, under --explain).
TRAIN_KEY_ASSUMPTIONS = ("seq_len", "global_batch", "goodput", "spot_model", "pue_default")
SERVE_KEY_ASSUMPTIONS = ("batching", "utilisation", "usable_memory_frac")


def layout(p: dict[str, Any]) -> str:
    """'1/1/8 Z1 mb1' (TP/PP/DP, ZeRO stage, micro-batch; ' rc:full' when recomputing)."""
    rc = p.get("recompute", "none")
    return f"{p['tp']}/{p['pp']}/{p['dp']} Z{p['zero']} mb{p['micro_batch']}" + (
        "" if rc == "none" else f" rc:{rc}"
    )


def where(p: dict[str, Any]) -> str:
    if p.get("provider") is None:
        return "-"
    # Marketplace regions read "Japan, JP, AS": the table shows the first part (--format csv/json keep all).
    region = "" if p.get("region") in (None, "*") else f" {str(p['region']).split(',')[0]}"
    pricing = " spot" if p.get("pricing") == "spot" else ""
    return f"{p['provider']}{region}{pricing}"


def _assumptions(v: View, d: dict[str, Any]) -> None:
    """Default view: plan-level assumptions plus the price/profile rows of the top two plans' devices;
    --explain: every assumption."""
    shown_devices = {p["device"] for p in d["plans"][:2]}
    extra: list[dict[str, Any]] = []
    for a in d["assumptions"]:
        name = str(a["name"])
        device = name.split("[", 1)[1].split("/")[0].rstrip("]") if "[" in name else None
        if name.startswith(("price", "efficiency")) and device in shown_devices and len(extra) < 4:
            extra.append(a)
    key_assumptions(v, d["assumptions"], TRAIN_KEY_ASSUMPTIONS, extra)
    assumptions_table(v, d["assumptions"])


def train_view(d: dict[str, Any]) -> View:
    """``mlcost plan train``: the top plans (a table that fits 100 columns), why #1 wins, spot fallbacks,
    key assumptions; --explain adds the Pareto front and every assumption."""
    v = View()
    v.line(
        f"{d['model']}, {f.tokens(d['tokens'])}, seq {d['seq_len']}, global batch {d['global_batch']} — "
        f"objective {d['objective']}",
        "bold",
    )
    v.line(
        f"{d['candidates_evaluated']:,} candidates ({d['layouts_evaluated']:,} layouts) in "
        f"{d['elapsed_s']:.2f} s, {d['feasible_plans']:,} feasible"
    )
    if d["status"] != "ok":
        v.line("no feasible plan", "red")
        for line in d["infeasible"]:
            v.line(f"- {line}")
    else:
        t = v.table(
            Table(
                f"Top {len(d['plans'])} training plans",
                ["#", "device", "n", "TP/PP/DP", "prec", "where", "time", "cost", "MFU", "GiB/dev"],
                right=("#", "n", "time", "cost", "MFU", "GiB/dev"),
                optional=("where", "MFU", "GiB/dev"),
            )
        )
        e = v.table(
            Table(
                "Energy and emissions of the top plans",
                ["#", "energy", "CO2e", "steps/h", "grad-accum", "recompute", "$/device-h", "PUE", "kg/kWh"],
                right=("#", "energy", "CO2e", "steps/h", "grad-accum", "$/device-h", "PUE", "kg/kWh"),
                explain=True,
            )
        )
        for p in d["plans"]:
            t.add(
                p["rank"],
                p["device"],
                p["count"],
                layout(p),
                p["precision"],
                where(p),
                f.duration(p["total_time_s"]),
                f.money(p["cost_usd"]),
                f.pct(p["mfu"]),
                f"{f.bytes_in(p['memory_per_device_bytes'])}/{f.bytes_in(p['memory_capacity_bytes'])}",
            )
            e.add(
                p["rank"],
                f.energy_kwh(p["energy_kwh"]),
                f.co2_kg(p["co2_kg"]),
                f.number(3600.0 / p["step_time_s"]),
                f.number(p["grad_accum_steps"]),
                p["recompute"],
                f.money(p["price_usd_per_device_h"]),
                f.number(p["pue"]),
                f.number(p["carbon_kg_per_kwh"]),
            )
        if d["plans"] and d["plans"][0].get("command"):
            v.line(f"reproduce #1: {d['plans'][0]['command']}", explain=True)
        for p in d["plans"]:
            s = p.get("spot")
            if not s:
                continue
            fb = (
                f"fallback {s['fallback_provider']} {s['fallback_region']} on-demand "
                f"{f.money(s['fallback_usd_per_device_h'])}/h"
                if s["fallback_provider"]
                else "no on-demand fallback"
            )
            worst = (
                f"; switch to on-demand by {f.duration(s['switch_to_on_demand_by_s'])} at the latest, "
                f"worst case {f.money(s['fallback_worst_cost_usd'])}"
                if s["fallback_worst_cost_usd"] is not None
                else ""
            )
            on_demand = f.duration(s["on_demand_time_s"]) if s["uses_fallback"] else "none expected"
            v.line(
                explain=p["rank"] != 1,
                text=f"#{p['rank']} spot: expected {f.duration(s['expected_time_s'])} "
                f"(uninterrupted {f.duration(p['estimate']['total_time_s'])}), on-demand part {on_demand}; "
                f"{fb}{worst}",
            )
        if d["why"]:
            v.line(f"Why #1 beats #2: {d['why']}")
        if d["pareto"]:
            pt = v.table(
                Table(
                    f"Pareto front (time vs cost, {len(d['pareto'])} plans)",
                    ["time", "cost", "device", "n", "layout", "prec", "where"],
                    right=("time", "cost", "n"),
                    explain=True,
                )
            )
            for p in d["pareto"]:
                pt.add(
                    f.duration(p["total_time_s"]),
                    f.money(p["cost_usd"]),
                    p["device"],
                    p["count"],
                    layout(p),
                    p["precision"],
                    where(p),
                )
    for note in d["notes"]:
        v.line(f"note: {note}")
    _assumptions(v, d)
    lo, hi = d["price_date_range"]
    v.line(f"Price snapshot date: {d['price_snapshot_date']} (price rows dated {lo} to {hi})")
    return v


def serve_view(d: dict[str, Any]) -> View:
    """``mlcost plan serve``: the top fleets meeting the latency targets at least monthly cost."""
    v = View()
    tr, tg = d["traffic"], d["targets"]
    ttft = "-" if tg["ttft_s"] is None else f.duration(tg["ttft_s"])
    tpot = "-" if tg["tpot_s"] is None else f.duration(tg["tpot_s"])
    v.line(
        f"{d['model']}: {f.number(tr['requests_per_s'])} req/s × ({tr['prompt_len']} prompt + "
        f"{tr['output_len']} output) tokens = {f.rate(tr['output_tokens_per_s'], 'output tokens/s')}",
        "bold",
    )
    v.line(
        f"targets TTFT {ttft}, TPOT {tpot}; {d['candidates_evaluated']:,} candidates, "
        f"{d['feasible_plans']:,} feasible"
    )
    if d["status"] != "ok":
        v.line("no feasible plan", "red")
        for line in d["infeasible"]:
            v.line(f"- {line}")
    else:
        t = v.table(
            Table(
                f"Top {len(d['plans'])} serving plans",
                [
                    "#",
                    "device",
                    "TP",
                    "batch",
                    "weights",
                    "repl",
                    "where",
                    "TTFT",
                    "TPOT",
                    "$/M out",
                    "$/month",
                    "util",
                ],
                right=("#", "TP", "batch", "repl", "TTFT", "TPOT", "$/M out", "$/month", "util"),
                optional=("where", "repl", "util"),
            )
        )
        for p in d["plans"]:
            t.add(
                p["rank"],
                p["device"],
                p["tp"],
                p["batch"],
                p["weight_precision"],
                p["replicas"],
                where(p),
                f.duration(p["ttft_s"]),
                f.duration(p["time_per_output_token_s"]),
                f.money(p["cost_per_million_output_tokens_usd"]),
                f.money(p["monthly_cost_usd"]),
                f"{p['utilisation']:.0%}",
            )
        q = v.table(
            Table(
                "Quality risk and devices",
                ["#", "devices", "quality risk"],
                right=("#", "devices"),
                wrap=("quality risk",),
                explain=True,
            )
        )
        for p in d["plans"]:
            q.add(p["rank"], p["devices"], p["quality_risk"])
        if d["why"]:
            v.line(f"Why #1 beats #2: {d['why']}")
        if any(p["quality_risk"] != "none" for p in d["plans"]):
            v.line("quality is not modelled: fp8/int8/int4 plans carry the flagged risk; check your evals")
    for note in d["notes"]:
        v.line(f"note: {note}")
    key_assumptions(v, d["assumptions"], SERVE_KEY_ASSUMPTIONS)
    assumptions_table(v, d["assumptions"])
    v.line(f"Price snapshot date: {d['price_snapshot_date']}")
    return v


def _slo_row(t: Table, label: str, dist: dict[str, Any]) -> None:
    t.add(label, f.duration(dist["p50"]), f.duration(dist["p90"]), f.duration(dist["p99"]))


def serve_slo_view(d: dict[str, Any]) -> View:
    """``mlcost plan serve --ttft-p90-ms/--itl-p90-ms``: the cheapest fleet meeting p90 targets (simulated)."""
    v = View()
    tr, tg = d["traffic"], d["targets"]
    targets = [
        f"{name} p90 ≤ {f.duration(tg[key])}"
        for name, key in (("TTFT", "ttft_p90_s"), ("ITL", "itl_p90_s"))
        if tg[key]
    ]
    prefix = ""
    if tr.get("prefix_share"):
        blocks = next(
            (a["value"] for a in d.get("assumptions", []) if a.get("name") == "prefix_cache"), "shared"
        )
        prefix = f" ({tr['prefix_share']:.0%} prefix-cache hit, blocks {blocks})"
    v.line(
        f"{d['model']}: {tr['requests_per_s']:g} req/s, prompt {tr['prompt_len']} tokens{prefix}, output "
        f"{tr['output_len']} tokens; {' and '.join(targets)} (queueing included: continuous-batching simulation)",
        "bold",
    )
    best = d["plans"][0] if d["plans"] else d["closest"]
    if d["status"] == "ok":
        p = best
        chunk = (
            f"chunked prefill, {p['max_num_batched_tokens']} batched tokens"
            if p["chunked_prefill"]
            else "no chunked prefill"
        )
        v.line(
            f"cheapest fleet: {p['replicas']} × ({p['tp']} × {p['device']}) = {p['devices']} devices, "
            f"{p['weight_precision']} weights, {p['engine']} ({chunk}, max {p['max_num_seqs']} seqs) on "
            f"{p['provider']} {p['region']} {p['pricing']} at {f.money(p['cost_per_hour_usd'])}/h ({f.money(p['monthly_cost_usd'])}/month, "
            f"{f.money(p['cost_per_million_output_tokens_usd'])} per 1M output tokens)"
        )
        v.line(f"binding SLO: {p['binding_slo']} — {p['binding_detail']}")
    else:
        v.line("status: infeasible — " + "; ".join(d["infeasible"]), "bold")
    if best is not None:
        t = v.table(
            Table(
                f"Simulated at {best['requests_per_s_per_replica']:.3g} req/s per replica",
                ["metric", "p50", "p90", "p99"],
                right=("p50", "p90", "p99"),
            )
        )
        sim = best["simulated"]
        _slo_row(t, "time to first token", sim["ttft_s"])
        _slo_row(t, "inter-token latency", sim["itl_s"])
        _slo_row(t, "end-to-end latency", sim["e2e_s"])
        _slo_row(t, "queueing delay", sim["queue_s"])
    if len(d["plans"]) > 1:
        a = v.table(
            Table(
                "Fleets found",
                ["#", "fleet", "$/h", "TTFT p90", "ITL p90", "binding"],
                right=("$/h", "TTFT p90", "ITL p90"),
            )
        )
        for i, p in enumerate(d["plans"], start=1):
            a.add(
                str(i),
                f"{p['replicas']} × ({p['tp']} × {p['device']}) {p['weight_precision']}"
                + (f" chunk {p['max_num_batched_tokens']}" if p["chunked_prefill"] else " no chunking"),
                f.money(p["cost_per_hour_usd"]),
                f.duration(p["simulated"]["ttft_s"]["p90"]),
                f.duration(p["simulated"]["itl_s"]["p90"]),
                str(p["binding_slo"]),
            )
    v.line(
        f"searched {d['candidates']} replica configurations: {d['pruned_by_closed_form']} pruned by the closed form, "
        f"{d['candidates_simulated']} simulated ({d['simulations']} simulations) in {d['elapsed_s']:.1f} s"
    )
    for n in d["notes"]:
        v.line("note: " + n)
    assumptions_table(v, d["assumptions"])
    return v
