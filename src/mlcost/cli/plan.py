"""`mlcost plan train` and `mlcost plan serve`: search configurations and print the best ones.

This module parses options and renders; the search is in :mod:`mlcost.plan.train` and
:mod:`mlcost.plan.serve`. Heavy modules (rich, numpy, the planner) are imported inside the commands so
`mlcost --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

from mlcost.cli import options
from mlcost.cli._output import emit, explain_option, format_option
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
    virtual_stages: str = typer.Option(
        "1,2,4", "--virtual-stages", help="Interleaved pipeline chunks per rank to try (used with PP > 1)."
    ),
    framework: str | None = typer.Option(
        None,
        "--framework",
        help="Framework family whose efficiency profiles score the devices (fsdp, torchtitan, megatron, nemo, "
        "maxtext; as estimate train) [each device's own profile].",
    ),
    catalog: list[Path] | None = options.text_files(
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
    from mlcost.plan.spot import SpotModel
    from mlcost.plan.train import TrainConstraints, TrainSearch, parse_weights, plan_train

    cat = default_catalog(catalog or None)
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
        virtual_stages=_ints(virtual_stages, "--virtual-stages") or (1,),
        framework=framework,
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
    requests_per_s: float | None = options.positive_float(
        None, "--requests-per-s", minimum=1e-6, maximum=1e9, help="Traffic in requests per second."
    ),
    rps: float | None = options.positive_float(
        None, "--rps", minimum=1e-6, maximum=1e9, help="Same as --requests-per-s."
    ),
    tokens_per_day: float | None = options.token_count(
        None, "--tokens-per-day", maximum=1e18, help="Traffic in output tokens per day."
    ),
    prompt_len: int = options.positive_int(
        1024, "--prompt-len", "--prompt-tokens", help="Prompt tokens per request."
    ),
    output_len: int = options.positive_int(
        256, "--output-len", "--output-tokens", help="Output tokens per request."
    ),
    ttft_ms: float | None = options.positive_float(
        None, "--ttft-ms", minimum=1e-3, maximum=1e9, help="Static-model time-to-first-token target in ms."
    ),
    tpot_ms: float | None = options.positive_float(
        None, "--tpot-ms", minimum=1e-3, maximum=1e9, help="Static-model time-per-output-token target in ms."
    ),
    ttft_p90_ms: float | None = options.positive_float(
        None,
        "--ttft-p90-ms",
        minimum=1e-3,
        maximum=1e9,
        help="p90 time-to-first-token target in ms, queueing included (simulated fleet).",
    ),
    itl_p90_ms: float | None = options.positive_float(
        None,
        "--itl-p90-ms",
        minimum=1e-3,
        maximum=1e9,
        help="p90 inter-token latency target in ms (simulated fleet).",
    ),
    engine: str | None = options.choice(
        None,
        "--engine",
        choices=("vllm", "sglang", "trtllm", "hf"),
        help="Serving engine (engines.csv) [vllm on GPUs, hf on CPUs].",
    ),
    sim_requests: int = options.positive_int(
        2000, "--sim-requests", maximum=1_000_000, help="Requests per replica simulation (SLO mode)."
    ),
    seed: int = options.nonneg_int(0, "--seed", help="Seed of the simulated arrivals (SLO mode)."),
    prefix_share: float = options.nonneg_float(
        0.0, "--prefix-share", maximum=0.99, help="Share of each prompt hit in the prefix cache."
    ),
    prefix_blocks: str = options.choice(
        "shared",
        "--prefix-blocks",
        choices=("shared", "per-sequence"),
        help="The hit's KV blocks: shared (one common prefix, held once) or per-sequence.",
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
    catalog: list[Path] | None = options.text_files(
        None, "--catalog", help="Extra catalog TOML file(s) overriding package data."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (docs/plan.md)."),
    fmt: str = format_option(),
    explain: bool = explain_option(),
) -> None:
    """Plan a serving fleet: choose device × TP × batch × weight precision × price row meeting the latency
    targets at least monthly cost; report cost per million output tokens, monthly cost and utilisation.
    With --ttft-p90-ms/--itl-p90-ms: the cheapest fleet (device, TP, replicas, engine settings, weights) whose
    simulated p90s under Poisson traffic at --rps meet the targets, and the binding SLO (docs/serve.md)."""
    from mlcost.catalog import resolve_model
    from mlcost.context import default_catalog
    from mlcost.plan.serve import plan_serve

    if rps is not None:
        if requests_per_s is not None:
            from mlcost.errors import SpecError

            raise SpecError("give --rps or --requests-per-s, not both", hint="they are the same option")
        requests_per_s = rps
    cat = default_catalog(catalog or None)
    spec = resolve_model(model, cat)
    if ttft_p90_ms is not None or itl_p90_ms is not None:
        from mlcost.errors import SpecError
        from mlcost.plan.serve_slo import plan_serve_slo

        if ttft_ms is not None or tpot_ms is not None:
            raise SpecError(
                "--ttft-ms/--tpot-ms (static model) cannot be combined with --ttft-p90-ms/--itl-p90-ms (simulated)",
                hint="use the p90 targets alone",
            )
        if requests_per_s is None and tokens_per_day is None:
            raise SpecError("--ttft-p90-ms/--itl-p90-ms need the traffic: --rps", hint="e.g. --rps 2")
        if requests_per_s is not None and tokens_per_day is not None:
            raise SpecError("give the traffic as exactly one of --rps and --tokens-per-day")
        rate = requests_per_s if requests_per_s is not None else tokens_per_day / 86400.0 / output_len  # type: ignore[operator]
        slo = plan_serve_slo(
            spec,
            requests_per_s=rate,
            prompt_len=prompt_len,
            output_len=output_len,
            ttft_p90_s=ttft_p90_ms / 1e3 if ttft_p90_ms is not None else None,
            itl_p90_s=itl_p90_ms / 1e3 if itl_p90_ms is not None else None,
            devices=_split(devices),
            providers=_split(providers),
            regions=_split(regions),
            spot=spot,
            weight_precisions=tuple(weight_precisions.split(",")),
            engine=engine,
            sim_requests=sim_requests,
            seed=seed,
            top=top,
            catalog=cat,
            prefix_share=prefix_share,
            share_prefix_blocks=prefix_blocks == "shared",
        )
        from mlcost.report.plan import serve_slo_view

        emit(slo.to_dict(), serve_slo_view, fmt=fmt, as_json=as_json, explain=explain)
        return
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
        engine=engine,
        prefix_share=prefix_share,
        share_prefix_blocks=prefix_blocks == "shared",
    )
    from mlcost.report.plan import serve_view

    emit(result.to_dict(), serve_view, fmt=fmt, as_json=as_json, explain=explain)


def register(app: typer.Typer) -> None:
    """Add the ``plan`` command group to the app."""
    app.add_typer(plan_app, name="plan")
