"""``mlcost estimate train`` and ``mlcost estimate serve``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from mlcost.cli import options
from mlcost.spec.cluster import PRICINGS
from mlcost.spec.job import KV_PRECISIONS, OPTIMIZERS, PRECISIONS, RECOMPUTES, WEIGHT_PRECISIONS

estimate_app = typer.Typer(
    help="Predict the cost of a training or serving job before it runs.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

#: Default tokens per optimizer step when --global-batch is not given (about 1M tokens: the order of
#: magnitude Llama/GPT-3 runs used; stated in the output's assumptions).
DEFAULT_TOKENS_PER_STEP = 2**20
#: Devices in a training job when --gpus is not given (one 8-GPU node; a CPU device runs alone).
DEFAULT_GPUS = 8
#: Chinchilla-optimal tokens per parameter (Hoffmann et al. 2022), used when --tokens is not given.
CHINCHILLA_TOKENS_PER_PARAM = 20.0


def _console(json_out: bool) -> Any:
    from mlcost.report.console import make_console

    return make_console(stderr=json_out)


def _catalog(paths: list[Path] | None) -> Any:
    from mlcost.catalog import get_catalog

    return get_catalog(extra=paths or None)


def _cluster(
    device: str,
    gpus: int,
    gpus_per_node: int | None,
    provider: str | None,
    region: str | None,
    pricing: str,
    price: float | None,
    pue: float | None,
    carbon: float | None,
) -> Any:
    from mlcost.spec import Cluster

    return Cluster(
        device=device,
        count=gpus,
        devices_per_node=gpus_per_node,
        provider=provider,
        region=region,
        pricing=pricing,  # type: ignore[arg-type]
        price_usd_per_device_h=price,
        pue=pue,
        carbon_kg_per_kwh=carbon,
    )


@estimate_app.command("train")
def train(
    model: str = typer.Option(
        "llama-3.1-8b", "--model", "-m", help="Preset name (mlcost models) or path to a config.json."
    ),
    device: str = typer.Option(
        "h100-sxm", "--device", "-d", help="Device id (mlcost devices), or 'local' after mlcost calibrate."
    ),
    gpus: int | None = options.positive_int(
        None, "--gpus", "-n", help="Devices in the job [8; 1 on a CPU device such as 'local']."
    ),
    gpus_per_node: int | None = options.positive_int(
        None, "--gpus-per-node", help="Devices per node [catalog's typical node]."
    ),
    tp: int = options.positive_int(1, "--tp", help="Tensor-parallel degree."),
    pp: int = options.positive_int(1, "--pp", help="Pipeline-parallel degree."),
    virtual_stages: int = options.positive_int(
        1, "--virtual-stages", help="Interleaved pipeline chunks per rank."
    ),
    micro_batch: int = options.positive_int(
        1, "--micro-batch", help="Sequences per micro-batch per data-parallel rank."
    ),
    global_batch: int | None = options.positive_int(
        None, "--global-batch", help="Sequences per optimizer step [≈1M tokens]."
    ),
    seq_len: int | None = options.positive_int(
        None, "--seq-len", help="Tokens per sequence [2048, capped at the model's context]."
    ),
    recompute: str = options.choice(
        "none", "--recompute", choices=RECOMPUTES, help="Activation recomputation: none, selective, full."
    ),
    sequence_parallel: bool = typer.Option(
        False, "--sequence-parallel", help="Megatron sequence parallelism."
    ),
    zero: int = options.int_range(1, "--zero", lo=0, hi=3, help="ZeRO stage 0-3 (FSDP full sharding = 3)."),
    flash_attention: bool = typer.Option(
        True, "--flash-attention/--no-flash-attention", help="Fused attention."
    ),
    overlap_grad_reduce: bool = typer.Option(
        True,
        "--overlap-grad-reduce/--no-overlap-grad-reduce",
        help="Framework overlaps gradient sync with backward.",
    ),
    fused_elementwise: bool = typer.Option(
        True,
        "--fused-elementwise/--eager-elementwise",
        help="Fused activation, norm and rotary kernels (eager: HF/PyTorch modules).",
    ),
    goodput: float = options.fraction(
        1.0, "--goodput", help="Share of wall time in useful steps (e.g. 0.9 for long runs)."
    ),
    precision: str = options.choice(
        "bf16", "--precision", choices=PRECISIONS, help="fp32, tf32, bf16, fp16 or fp8."
    ),
    optimizer: str = options.choice(
        "adamw", "--optimizer", choices=OPTIMIZERS, help="adamw or sgd (with momentum)."
    ),
    tokens: float | None = options.token_count(
        None, "--tokens", "-t", help="Training tokens, e.g. 1e12, 300B, 2T [20 × params]."
    ),
    provider: str | None = typer.Option(None, "--provider", help="Cloud provider for the price [cheapest]."),
    region: str | None = typer.Option(None, "--region", help="Region for price and carbon."),
    pricing: str = options.choice("on-demand", "--pricing", choices=PRICINGS, help="on-demand or spot."),
    price: float | None = options.money(None, "--price-usd-per-h", help="Override: USD per device-hour."),
    pue: float | None = options.pue(None, "--pue", help="Override: data-centre PUE."),
    carbon: float | None = options.nonneg_float(
        None, "--carbon-kg-per-kwh", maximum=5.0, help="Override: grid carbon intensity."
    ),
    catalog: list[Path] | None = options.text_files(
        None, "--catalog", help="Extra catalog TOML file(s) overriding package data."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object (docs/json.md)."),
) -> None:
    """Predict FLOPs, memory, time, energy, dollars and CO2 of a training job."""
    from mlcost.estimate import count_params, estimate_train
    from mlcost.estimate.result import Assumption
    from mlcost.report.jsonout import dumps
    from mlcost.spec import TrainJob
    from mlcost.spec.model import resolve_model

    cat = _catalog(catalog)
    spec = resolve_model(model, cat)
    extra: list[Assumption] = []
    if gpus is None:
        gpus = 1 if cat.device(device).kind == "cpu" else DEFAULT_GPUS
        extra.append(
            Assumption("gpus", gpus, f"not given: {gpus} ({DEFAULT_GPUS} accelerators, 1 CPU); pass --gpus")
        )
    if tokens is None:
        n_tokens = CHINCHILLA_TOKENS_PER_PARAM * count_params(spec).total
        extra.append(
            Assumption(
                "tokens", n_tokens, "not given: 20 tokens per parameter (Hoffmann et al. 2022); pass --tokens"
            )
        )
    else:
        n_tokens = tokens
    if seq_len is None:
        seq_len = min(2048, spec.max_seq_len)
        extra.append(
            Assumption("seq_len", seq_len, "not given: 2048, capped at the model's context; pass --seq-len")
        )
    if global_batch is None:
        dp = max(gpus // (tp * pp), 1)
        unit = micro_batch * dp
        global_batch = max(unit, math.ceil(DEFAULT_TOKENS_PER_STEP / seq_len / unit) * unit)
        extra.append(
            Assumption(
                "global_batch",
                global_batch,
                f"not given: ≈{DEFAULT_TOKENS_PER_STEP:,} tokens per step, a multiple of micro-batch × DP; pass --global-batch",
            )
        )
    job = TrainJob(
        tokens=n_tokens,
        seq_len=seq_len,
        global_batch=global_batch,
        micro_batch=micro_batch,
        precision=precision,  # type: ignore[arg-type]
        optimizer=optimizer,  # type: ignore[arg-type]
        tp=tp,
        pp=pp,
        virtual_stages=virtual_stages,
        sequence_parallel=sequence_parallel,
        zero=zero,
        recompute=recompute,  # type: ignore[arg-type]
        flash_attention=flash_attention,
        overlap_grad_reduce=overlap_grad_reduce,
        fused_elementwise=fused_elementwise,
        goodput=goodput,
    )
    cluster = _cluster(device, gpus, gpus_per_node, provider, region, pricing, price, pue, carbon)
    est = estimate_train(spec, job, cluster, catalog=cat)
    est.assumptions.extend(extra)
    if json_out:
        typer.echo(dumps(est.to_dict()))
        return
    from mlcost.report.estimate import render_train

    render_train(est, _console(False))


@estimate_app.command("serve")
def serve(
    model: str = typer.Option(
        "llama-3.1-8b", "--model", "-m", help="Preset name (mlcost models) or path to a config.json."
    ),
    device: str = typer.Option("h100-sxm", "--device", "-d", help="Device id (mlcost devices)."),
    gpus: int | None = options.positive_int(None, "--gpus", "-n", help="Devices [= TP: one replica]."),
    gpus_per_node: int | None = options.positive_int(
        None, "--gpus-per-node", help="Devices per node [catalog]."
    ),
    tp: int = options.positive_int(1, "--tp", help="Tensor-parallel degree of one replica."),
    batch: int = options.positive_int(1, "--batch", "-b", help="Concurrent sequences decoded together."),
    prompt_len: int = options.positive_int(1024, "--prompt-len", help="Prompt tokens per request."),
    output_len: int = options.positive_int(256, "--output-len", help="Generated tokens per request."),
    weight_precision: str = options.choice(
        "bf16",
        "--weight-precision",
        choices=WEIGHT_PRECISIONS,
        help="bf16, fp16, fp8, int8, int4 (weight-only) or fp32.",
    ),
    kv_precision: str = options.choice(
        "bf16",
        "--kv-precision",
        choices=KV_PRECISIONS,
        help="KV-cache precision: bf16, fp16, fp8, int8, fp32.",
    ),
    provider: str | None = typer.Option(None, "--provider", help="Cloud provider for the price [cheapest]."),
    region: str | None = typer.Option(None, "--region", help="Region for price and carbon."),
    pricing: str = options.choice("on-demand", "--pricing", choices=PRICINGS, help="on-demand or spot."),
    price: float | None = options.money(None, "--price-usd-per-h", help="Override: USD per device-hour."),
    pue: float | None = options.pue(None, "--pue", help="Override: data-centre PUE."),
    carbon: float | None = options.nonneg_float(
        None, "--carbon-kg-per-kwh", maximum=5.0, help="Override: grid carbon intensity."
    ),
    catalog: list[Path] | None = options.text_files(None, "--catalog", help="Extra catalog TOML file(s)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object (docs/json.md)."),
) -> None:
    """Predict latency, throughput, memory and $ per million tokens of serving a model."""
    from mlcost.estimate import estimate_serve
    from mlcost.report.jsonout import dumps
    from mlcost.spec import ServeJob
    from mlcost.spec.model import resolve_model

    cat = _catalog(catalog)
    spec = resolve_model(model, cat)
    job = ServeJob(
        prompt_len=prompt_len,
        output_len=output_len,
        batch=batch,
        tp=tp,
        weight_precision=weight_precision,  # type: ignore[arg-type]
        kv_precision=kv_precision,  # type: ignore[arg-type]
    )
    cluster = _cluster(device, gpus or tp, gpus_per_node, provider, region, pricing, price, pue, carbon)
    est = estimate_serve(spec, job, cluster, catalog=cat)
    if json_out:
        typer.echo(dumps(est.to_dict()))
        return
    from mlcost.report.estimate import render_serve

    render_serve(est, _console(False))


def register(app: typer.Typer) -> None:
    """Add ``mlcost estimate`` to the app."""
    app.add_typer(estimate_app, name="estimate")
