"""`mlcost plan train` and `mlcost plan serve`: search configurations and print the best ones.

This module parses options and renders; the search is in :mod:`mlcost.plan.train` and
:mod:`mlcost.plan.serve`. Heavy modules (rich, numpy, the planner) are imported inside the commands so
`mlcost --help` stays fast.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from mlcost.cli import options
from mlcost.spec.job import PRECISIONS, WEIGHT_PRECISIONS

#: The objectives of ``plan train`` (mlcost.plan.train ranks by these).
OBJECTIVES = ("cost", "time", "energy", "co2", "mix")

plan_app = typer.Typer(
    name="plan",
    help="Choose the cheapest (or fastest, greenest) way to train or serve a model.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _split(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    items = tuple(x.strip() for x in text.split(",") if x.strip())
    return items or None


def _ints(text: str | None, what: str) -> tuple[int, ...] | None:
    """Comma-separated whole numbers, each >= 1 (``--counts 8,16``)."""
    from mlcost.spec.validate import positive_int

    items = _split(text)
    if items is None:
        return None
    return tuple(positive_int(x, what) for x in items)


def _console() -> Any:
    """A rich console; wide enough for the plan tables when the output is not a terminal."""
    import sys

    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=160)


def _esc(text: Any) -> str:
    from rich.markup import escape

    return escape(str(text))


def _money(v: float | None) -> str:
    return "-" if v is None else f"${v:,.0f}" if v >= 100 else f"${v:,.2f}"


@plan_app.command("train")
def train(
    model: str = typer.Option(
        ..., "--model", "-m", help="Model preset (mlcost models) or path to a config.json."
    ),
    tokens: float = options.token_count(..., "--tokens", help="Training tokens, e.g. 1e12, 300B, 2T."),
    deadline: float | None = options.duration(None, "--deadline", help="Wall-clock limit, e.g. 30d, 12h."),
    budget_usd: float | None = options.positive_float(None, "--budget-usd", help="Cost limit in USD."),
    max_devices: int = options.positive_int(1024, "--max-devices", help="Most devices in one plan."),
    devices: str | None = typer.Option(
        None, "--devices", help="Allowed device ids, comma-separated (default all)."
    ),
    providers: str | None = typer.Option(None, "--providers", help="Allowed providers, comma-separated."),
    regions: str | None = typer.Option(None, "--regions", help="Allowed regions ('*' = provider-wide rows)."),
    spot: bool = typer.Option(
        False, "--spot/--no-spot", help="Allow spot prices (with an on-demand fallback)."
    ),
    max_co2_kg: float | None = options.positive_float(None, "--max-co2-kg", help="Emissions cap in kg CO2e."),
    objective: str = options.choice(
        "cost", "--objective", choices=OBJECTIVES, help="cost, time, energy, co2 or mix."
    ),
    weights: str | None = typer.Option(
        None, "--weights", help="Weights for --objective mix, e.g. cost=1,time=0.5."
    ),
    top: int = options.positive_int(5, "--top", maximum=10_000, help="How many plans to show."),
    seq_len: int | None = options.positive_int(
        None, "--seq-len", help="Tokens per sequence (default min(max, 4096))."
    ),
    global_batch: int | None = options.positive_int(
        None, "--global-batch", help="Sequences per step (default ~4M tokens)."
    ),
    precisions: str = options.choices_csv(
        "bf16,fp8", "--precisions", choices=PRECISIONS, help="Training precisions to try (fp32 off)."
    ),
    counts: str | None = typer.Option(
        None, "--counts", help="Device counts to try instead of the default ladder."
    ),
    spot_rate: float = options.nonneg_float(
        0.01,
        "--spot-interruptions-per-h",
        maximum=1000.0,
        help="Spot interruptions per node-hour (assumption; see docs/plan.md).",
    ),
    restart: float = options.duration(
        "10min", "--restart-overhead", help="Time lost per interruption to restart."
    ),
    checkpoint: float = options.duration(
        "1h", "--checkpoint-interval", help="Checkpoint interval (half is lost)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (docs/plan.md)."),
) -> None:
    """Plan a training run: search device × count × TP/PP/DP × ZeRO × micro-batch × recomputation ×
    precision × provider/region/pricing, keep what fits and meets the constraints, rank by the objective.

    An infeasible request is an answer, not an error: it exits 0 with status "infeasible" and says what
    would make it feasible. Bad input exits 2.
    """
    from mlcost.catalog import get_catalog
    from mlcost.plan.spot import SpotModel
    from mlcost.plan.train import TrainConstraints, TrainSearch, parse_weights, plan_train
    from mlcost.spec.model import resolve_model

    cat = get_catalog()
    spec = resolve_model(model, cat)
    cons = TrainConstraints(
        deadline_s=deadline,
        budget_usd=budget_usd,
        max_devices=max_devices,
        devices=_split(devices),
        providers=_split(providers),
        regions=_split(regions),
        spot=spot,
        max_co2_kg=max_co2_kg,
    )
    search = TrainSearch(
        seq_len=seq_len,
        global_batch=global_batch,
        precisions=tuple(precisions.split(",")),
        counts=_ints(counts, "--counts"),
    )
    spot_model = SpotModel(
        interruptions_per_node_h=spot_rate,
        restart_overhead_s=restart,
        checkpoint_interval_s=checkpoint,
        source="user" if (spot_rate, restart, checkpoint) != (0.01, 600.0, 3600.0) else SpotModel().source,
    )
    result = plan_train(
        spec,
        tokens,
        constraints=cons,
        search=search,
        objective=objective,
        weights=parse_weights(weights) if objective == "mix" else None,
        spot_model=spot_model,
        top=top,
        catalog=cat,
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    render_train(result.to_dict(), _console())


def render_train(d: dict[str, Any], console: Any) -> None:
    """Render the ``plan train`` JSON object as rich tables (no computation beyond formatting)."""
    from rich.table import Table

    from mlcost.units import format_bytes, format_duration

    head = (
        f"{d['model']}, {d['tokens']:.3g} tokens, seq {d['seq_len']}, global batch {d['global_batch']} — "
        f"objective {d['objective']}; {d['candidates_evaluated']:,} candidates "
        f"({d['layouts_evaluated']:,} layouts) in {d['elapsed_s']:.2f} s, {d['feasible_plans']:,} feasible"
    )
    console.print(head)
    if d["status"] != "ok":
        console.print("[bold red]no feasible plan[/]")
        for line in d["infeasible"]:
            console.print(f"- {_esc(line)}")
    else:
        table = Table(title=f"Top {len(d['plans'])} training plans")
        for col in (
            "#",
            "device",
            "n",
            "layout",
            "prec",
            "where",
            "time",
            "cost",
            "kWh",
            "kg CO2",
            "MFU",
            "mem/dev",
        ):
            table.add_column(col, justify="left" if col in ("device", "layout", "where", "prec") else "right")
        for p in d["plans"]:
            layout = (
                f"TP{p['tp']} PP{p['pp']} DP{p['dp']} Z{p['zero']} mb{p['micro_batch']} rc:{p['recompute']}"
            )
            where = "-" if p["provider"] is None else f"{p['provider']} {p['region']} {p['pricing']}"
            table.add_row(
                str(p["rank"]),
                p["device"],
                str(p["count"]),
                layout,
                p["precision"],
                where,
                format_duration(p["total_time_s"]),
                _money(p["cost_usd"]),
                f"{p['energy_kwh']:,.0f}",
                f"{p['co2_kg']:,.0f}",
                f"{p['mfu']:.1%}",
                f"{format_bytes(p['memory_per_device_bytes'])}/{format_bytes(p['memory_capacity_bytes'])}",
            )
        console.print(table)
        for p in d["plans"]:
            s = p.get("spot")
            if s:
                fb = (
                    f"fallback {s['fallback_provider']} {s['fallback_region']} on-demand ${s['fallback_usd_per_device_h']:g}/h"
                    if s["fallback_provider"]
                    else "no on-demand fallback"
                )
                worst = (
                    f"; switch to on-demand by {format_duration(s['switch_to_on_demand_by_s'])} at the latest, "
                    f"worst case ${s['fallback_worst_cost_usd']:,.0f}"
                    if s["fallback_worst_cost_usd"] is not None
                    else ""
                )
                console.print(
                    f"#{p['rank']} spot: expected {format_duration(s['expected_time_s'])} "
                    f"(uninterrupted {format_duration(p['estimate']['total_time_s'])}), "
                    f"on-demand part {format_duration(s['on_demand_time_s']) if s['uses_fallback'] else 'none expected'}; "
                    f"{fb}{worst}"
                )
        if d["why"]:
            console.print(f"[bold]Why #1 beats #2:[/] {_esc(d['why'])}")
        if d["pareto"]:
            pt = Table(title="Pareto front (time vs cost)")
            for col in ("time", "cost", "device", "n", "layout", "where"):
                pt.add_column(col, justify="right" if col in ("time", "cost", "n") else "left")
            shown = d["pareto"] if len(d["pareto"]) <= 12 else d["pareto"][:: max(1, len(d["pareto"]) // 12)]
            for p in shown:
                pt.add_row(
                    format_duration(p["total_time_s"]),
                    _money(p["cost_usd"]),
                    p["device"],
                    str(p["count"]),
                    f"TP{p['tp']} PP{p['pp']} DP{p['dp']} Z{p['zero']} mb{p['micro_batch']} {p['precision']}",
                    f"{p['provider']} {p['region']} {p['pricing']}",
                )
            console.print(pt)
            if len(shown) < len(d["pareto"]):
                console.print(f"({len(shown)} of {len(d['pareto'])} Pareto points shown; --json lists all)")
    for note in d["notes"]:
        console.print(f"note: {_esc(note)}")
    shown_devices = {p["device"] for p in d["plans"][:2]}
    console.print("Assumptions (price and profile rows of the top two plans' devices; --json lists all):")
    for a in d["assumptions"]:
        name = str(a["name"])
        if "[" in name and name.split("[", 1)[1].split("/")[0].rstrip("]") not in shown_devices:
            continue
        console.print(f"  {_esc(a['name'])} = {_esc(a['value'])} — {_esc(a['source'])}", overflow="fold")
    lo, hi = d["price_date_range"]
    console.print(f"Price snapshot date: {d['price_snapshot_date']} (price rows dated {lo} to {hi})")


@plan_app.command("serve")
def serve(
    model: str = typer.Option(
        ..., "--model", "-m", help="Model preset (mlcost models) or path to a config.json."
    ),
    requests_per_s: float | None = options.positive_float(
        None, "--requests-per-s", minimum=1e-6, maximum=1e9, help="Traffic in requests per second."
    ),
    tokens_per_day: float | None = options.token_count(
        None, "--tokens-per-day", maximum=1e18, help="Traffic in output tokens per day."
    ),
    prompt_len: int = options.positive_int(1024, "--prompt-len", help="Prompt tokens per request."),
    output_len: int = options.positive_int(256, "--output-len", help="Output tokens per request."),
    ttft_ms: float | None = options.positive_float(
        None, "--ttft-ms", minimum=1e-3, maximum=1e9, help="Time-to-first-token target in ms."
    ),
    tpot_ms: float | None = options.positive_float(
        None, "--tpot-ms", minimum=1e-3, maximum=1e9, help="Time-per-output-token target in ms."
    ),
    devices: str | None = typer.Option(None, "--devices", help="Allowed device ids, comma-separated."),
    providers: str | None = typer.Option(None, "--providers", help="Allowed providers, comma-separated."),
    regions: str | None = typer.Option(None, "--regions", help="Allowed regions."),
    spot: bool = typer.Option(False, "--spot/--no-spot", help="Allow spot prices."),
    weight_precisions: str = options.choices_csv(
        "bf16,fp8,int8,int4",
        "--weight-precisions",
        choices=WEIGHT_PRECISIONS,
        help="Weight formats to try (fp8 only on fp8 devices).",
    ),
    top: int = options.positive_int(5, "--top", maximum=10_000, help="How many plans to show."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (docs/plan.md)."),
) -> None:
    """Plan a serving fleet: choose device × TP × batch × weight precision × price row meeting the latency
    targets at least monthly cost; report cost per million output tokens, monthly cost and utilisation."""
    from mlcost.catalog import get_catalog
    from mlcost.plan.serve import plan_serve
    from mlcost.spec.model import resolve_model

    cat = get_catalog()
    spec = resolve_model(model, cat)
    result = plan_serve(
        spec,
        prompt_len=prompt_len,
        output_len=output_len,
        requests_per_s=requests_per_s,
        tokens_per_day=tokens_per_day,
        ttft_s=ttft_ms / 1e3 if ttft_ms is not None else None,
        tpot_s=tpot_ms / 1e3 if tpot_ms is not None else None,
        devices=_split(devices),
        providers=_split(providers),
        regions=_split(regions),
        spot=spot,
        weight_precisions=tuple(weight_precisions.split(",")),
        top=top,
        catalog=cat,
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    render_serve(result.to_dict(), _console())


def render_serve(d: dict[str, Any], console: Any) -> None:
    """Render the ``plan serve`` JSON object."""
    from rich.table import Table

    tr = d["traffic"]
    tg = d["targets"]
    ttft = "-" if tg["ttft_s"] is None else f"{tg['ttft_s'] * 1e3:g} ms"
    tpot = "-" if tg["tpot_s"] is None else f"{tg['tpot_s'] * 1e3:g} ms"
    console.print(
        f"{d['model']}: {tr['requests_per_s']:.3g} req/s × ({tr['prompt_len']} prompt + {tr['output_len']} output) "
        f"tokens = {tr['output_tokens_per_s']:,.0f} output tokens/s; targets TTFT {ttft}, TPOT {tpot}; "
        f"{d['candidates_evaluated']:,} candidates, {d['feasible_plans']:,} feasible"
    )
    if d["status"] != "ok":
        console.print("[bold red]no feasible plan[/]")
        for line in d["infeasible"]:
            console.print(f"- {_esc(line)}")
    else:
        table = Table(title=f"Top {len(d['plans'])} serving plans")
        for col in (
            "#",
            "device",
            "TP",
            "batch",
            "weights",
            "replicas",
            "devices",
            "where",
            "TTFT",
            "TPOT",
            "$/M out",
            "$/month",
            "util",
            "quality risk",
        ):
            table.add_column(
                col, justify="left" if col in ("device", "weights", "where", "quality risk") else "right"
            )
        for p in d["plans"]:
            table.add_row(
                str(p["rank"]),
                p["device"],
                str(p["tp"]),
                str(p["batch"]),
                p["weight_precision"],
                str(p["replicas"]),
                str(p["devices"]),
                f"{p['provider']} {p['region']} {p['pricing']}",
                f"{p['ttft_s'] * 1e3:.0f} ms",
                f"{p['time_per_output_token_s'] * 1e3:.1f} ms",
                f"${p['cost_per_million_output_tokens_usd']:.3f}",
                _money(p["monthly_cost_usd"]),
                f"{p['utilisation']:.0%}",
                p["quality_risk"].split(" (")[0],
            )
        console.print(table)
        if d["why"]:
            console.print(f"[bold]Why #1 beats #2:[/] {_esc(d['why'])}")
        if any(p["quality_risk"] != "none" for p in d["plans"]):
            console.print(
                "quality is not modelled: fp8/int8/int4 plans carry the flagged risk; check your evals"
            )
    for note in d["notes"]:
        console.print(f"note: {_esc(note)}")
    console.print("Assumptions:")
    for a in d["assumptions"]:
        console.print(f"  {_esc(a['name'])} = {_esc(a['value'])} — {_esc(a['source'])}", overflow="fold")
    console.print(f"Price snapshot date: {d['price_snapshot_date']}")


def register(app: typer.Typer) -> None:
    """Add the ``plan`` command group to the app."""
    app.add_typer(plan_app, name="plan")
