"""`mlcost plan train` and `mlcost plan serve`: search configurations and print the best ones.

This module parses options and renders; the search is in :mod:`mlcost.plan.train` and
:mod:`mlcost.plan.serve`. Heavy modules (rich, numpy, the planner) are imported inside the commands so
`mlcost --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

from mlcost.cli._output import emit, explain_option, format_option

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
    from mlcost.errors import SpecError

    items = _split(text)
    if items is None:
        return None
    try:
        return tuple(int(x) for x in items)
    except ValueError:
        raise SpecError(
            f"cannot read {what} {text!r}", hint="write whole numbers separated by commas"
        ) from None


@plan_app.command("train")
def train(
    model: str = typer.Option(
        ..., "--model", "-m", help="Model preset (mlcost models) or path to a config.json."
    ),
    tokens: str = typer.Option(..., "--tokens", help="Training tokens, e.g. 1e12, 300B, 2T."),
    deadline: str | None = typer.Option(None, "--deadline", help="Wall-clock limit, e.g. 30d, 12h."),
    budget_usd: float | None = typer.Option(None, "--budget-usd", help="Cost limit in USD."),
    max_devices: int = typer.Option(1024, "--max-devices", help="Most devices in one plan."),
    devices: str | None = typer.Option(
        None, "--devices", help="Allowed device ids, comma-separated (default all)."
    ),
    providers: str | None = typer.Option(None, "--providers", help="Allowed providers, comma-separated."),
    regions: str | None = typer.Option(None, "--regions", help="Allowed regions ('*' = provider-wide rows)."),
    spot: bool = typer.Option(
        False, "--spot/--no-spot", help="Allow spot prices (with an on-demand fallback)."
    ),
    max_co2_kg: float | None = typer.Option(None, "--max-co2-kg", help="Emissions cap in kg CO2e."),
    objective: str = typer.Option("cost", "--objective", help="cost, time, energy, co2 or mix."),
    weights: str | None = typer.Option(
        None, "--weights", help="Weights for --objective mix, e.g. cost=1,time=0.5."
    ),
    top: int = typer.Option(5, "--top", help="How many plans to show."),
    seq_len: int | None = typer.Option(
        None, "--seq-len", help="Tokens per sequence (default min(max, 4096))."
    ),
    global_batch: int | None = typer.Option(
        None, "--global-batch", help="Sequences per step (default ~4M tokens)."
    ),
    precisions: str = typer.Option("bf16,fp8", "--precisions", help="Training precisions to try (fp32 off)."),
    counts: str | None = typer.Option(
        None, "--counts", help="Device counts to try instead of the default ladder."
    ),
    spot_rate: float = typer.Option(
        0.01,
        "--spot-interruptions-per-h",
        help="Spot interruptions per node-hour (assumption; see docs/plan.md).",
    ),
    restart: str = typer.Option("10min", "--restart-overhead", help="Time lost per interruption to restart."),
    checkpoint: str = typer.Option("1h", "--checkpoint-interval", help="Checkpoint interval (half is lost)."),
    virtual_stages: str = typer.Option(
        "1,2,4", "--virtual-stages", help="Interleaved pipeline chunks per rank to try (used with PP > 1)."
    ),
    catalog: list[Path] | None = typer.Option(
        None, "--catalog", help="Extra catalog TOML file(s) overriding package data."
    ),
    export: Path | None = typer.Option(
        None,
        "--export",
        help="Write launch files for plan #1 here (SkyPilot, torchrun/FSDP, DeepSpeed, Megatron).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (docs/plan.md)."),
    fmt: str = format_option(),
    explain: bool = explain_option(),
) -> None:
    """Plan a training run: search device × count × TP/PP/DP × ZeRO × micro-batch × recomputation ×
    precision × provider/region/pricing, keep what fits and meets the constraints, rank by the objective.

    An infeasible request is an answer, not an error: it exits 0 with status "infeasible" and says what
    would make it feasible. Bad input exits 2.
    """
    from mlcost.catalog import resolve_model
    from mlcost.context import default_catalog
    from mlcost.errors import SpecError
    from mlcost.plan.spot import SpotModel
    from mlcost.plan.train import TrainConstraints, TrainSearch, parse_weights, plan_train
    from mlcost.units import parse_count, parse_duration_s

    cat = default_catalog(catalog or None)
    spec = resolve_model(model, cat)
    if top < 1:
        raise SpecError(f"--top must be at least 1, got {top}")
    if spot_rate < 0:
        raise SpecError(f"--spot-interruptions-per-h must be >= 0, got {spot_rate}")
    cons = TrainConstraints(
        deadline_s=parse_duration_s(deadline) if deadline is not None else None,
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
        precisions=_split(precisions) or ("bf16",),
        counts=_ints(counts, "--counts"),
        virtual_stages=_ints(virtual_stages, "--virtual-stages") or (1,),
    )
    spot_model = SpotModel(
        interruptions_per_node_h=spot_rate,
        restart_overhead_s=parse_duration_s(restart),
        checkpoint_interval_s=parse_duration_s(checkpoint),
        source="user" if (spot_rate, restart, checkpoint) != (0.01, "10min", "1h") else SpotModel().source,
    )
    result = plan_train(
        spec,
        parse_count(tokens, what="--tokens"),
        constraints=cons,
        search=search,
        objective=objective,
        weights=parse_weights(weights) if objective == "mix" else None,
        spot_model=spot_model,
        top=top,
        catalog=cat,
        catalog_files=[str(p) for p in catalog or ()],
    )
    from mlcost.cli._output import check_format
    from mlcost.report.plan import train_view

    written: list[str] = []
    if export is not None and result.plans:
        from mlcost.plan.export import write_exports

        per_node = cat.device(result.plans[0].device).devices_per_node
        written = [str(p) for p in write_exports(result, export, model=spec, devices_per_node=per_node)]
    out = result.to_dict()
    if export is not None:
        out["exported"] = written
    emit(out, train_view, fmt=fmt, as_json=as_json, explain=explain)
    if written and check_format(fmt, as_json) in ("table", "md"):
        typer.echo(f"exported plan #1 to {export}: {', '.join(Path(p).name for p in written)}", err=True)


@plan_app.command("serve")
def serve(
    model: str = typer.Option(
        ..., "--model", "-m", help="Model preset (mlcost models) or path to a config.json."
    ),
    requests_per_s: float | None = typer.Option(
        None, "--requests-per-s", help="Traffic in requests per second."
    ),
    tokens_per_day: str | None = typer.Option(
        None, "--tokens-per-day", help="Traffic in output tokens per day."
    ),
    prompt_len: int = typer.Option(1024, "--prompt-len", help="Prompt tokens per request."),
    output_len: int = typer.Option(256, "--output-len", help="Output tokens per request."),
    ttft_ms: float | None = typer.Option(None, "--ttft-ms", help="Time-to-first-token target in ms."),
    tpot_ms: float | None = typer.Option(None, "--tpot-ms", help="Time-per-output-token target in ms."),
    devices: str | None = typer.Option(None, "--devices", help="Allowed device ids, comma-separated."),
    providers: str | None = typer.Option(None, "--providers", help="Allowed providers, comma-separated."),
    regions: str | None = typer.Option(None, "--regions", help="Allowed regions."),
    spot: bool = typer.Option(False, "--spot/--no-spot", help="Allow spot prices."),
    weight_precisions: str = typer.Option(
        "bf16,fp8,int8,int4", "--weight-precisions", help="Weight formats to try (fp8 only on fp8 devices)."
    ),
    top: int = typer.Option(5, "--top", help="How many plans to show."),
    catalog: list[Path] | None = typer.Option(
        None, "--catalog", help="Extra catalog TOML file(s) overriding package data."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (docs/plan.md)."),
    fmt: str = format_option(),
    explain: bool = explain_option(),
) -> None:
    """Plan a serving fleet: choose device × TP × batch × weight precision × price row meeting the latency
    targets at least monthly cost; report cost per million output tokens, monthly cost and utilisation."""
    from mlcost.catalog import resolve_model
    from mlcost.context import default_catalog
    from mlcost.errors import SpecError
    from mlcost.plan.serve import plan_serve
    from mlcost.units import parse_count

    cat = default_catalog(catalog or None)
    spec = resolve_model(model, cat)
    if top < 1:
        raise SpecError(f"--top must be at least 1, got {top}")
    for name, v in (("--ttft-ms", ttft_ms), ("--tpot-ms", tpot_ms)):
        if v is not None and v <= 0:
            raise SpecError(f"{name} must be positive, got {v}")
    result = plan_serve(
        spec,
        prompt_len=prompt_len,
        output_len=output_len,
        requests_per_s=requests_per_s,
        tokens_per_day=parse_count(tokens_per_day, what="--tokens-per-day") if tokens_per_day else None,
        ttft_s=ttft_ms / 1e3 if ttft_ms is not None else None,
        tpot_s=tpot_ms / 1e3 if tpot_ms is not None else None,
        devices=_split(devices),
        providers=_split(providers),
        regions=_split(regions),
        spot=spot,
        weight_precisions=_split(weight_precisions) or ("bf16",),
        top=top,
        catalog=cat,
    )
    from mlcost.report.plan import serve_view

    emit(result.to_dict(), serve_view, fmt=fmt, as_json=as_json, explain=explain)


def register(app: typer.Typer) -> None:
    """Add the ``plan`` command group to the app."""
    app.add_typer(plan_app, name="plan")
