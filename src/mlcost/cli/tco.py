"""`mlcost tco`: training plus serving cost over a horizon for candidate model sizes; the cheapest size and
the traffic at which the choice flips (break-even). Optional NPV/ROI with revenue per million tokens.

This module parses options and renders; the numbers come from :mod:`mlcost.finance` (which calls the
estimator). See docs/tco.md.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer

from mlcost.cli._output import emit, explain_option, format_option
from mlcost.errors import SpecError
from mlcost.finance.scaling import FAMILIES, SCALING_LAWS, get_scaling_law, model_for_params
from mlcost.finance.tco import (
    Candidate,
    ServeSetup,
    Traffic,
    TrainSetup,
    target_loss_candidates,
    tco,
)
from mlcost.spec.cluster import PRICINGS, Cluster
from mlcost.spec.job import PRECISIONS, WEIGHT_PRECISIONS
from mlcost.spec.model import ModelSpec
from mlcost.units import parse_count, parse_duration_s

_SIZE_RE = re.compile(r"^\s*[0-9]*\.?[0-9]+\s*[mMbBtT]\s*$")


def parse_models(text: str, *, family: str, catalog: Any) -> list[ModelSpec]:
    """``llama-3.1-8b,7b,350m``: catalog presets by name, sizes (m/b/t suffix) as generated shapes."""
    out = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        if _SIZE_RE.match(item):
            out.append(
                model_for_params(
                    parse_count(item, what="model size"), family, name=f"{family}-{item.lower()}"
                )
            )
        else:
            out.append(catalog.model(item))
    if not out:
        raise SpecError("--models is empty", hint="give presets or sizes, e.g. --models llama-3.1-8b,3b")
    return out


def tco_command(
    tokens_per_day: str = typer.Option(
        ..., "--tokens-per-day", help="Expected serving traffic: output tokens per day (e.g. 1e9, 2B)."
    ),
    target_loss: float | None = typer.Option(
        None,
        "--target-loss",
        help="Quality target (nats/token under the scaling law): each size trains to reach it.",
    ),
    train_tokens: str | None = typer.Option(
        None, "--train-tokens", help="Same data budget for every candidate (e.g. 2T); needs --models."
    ),
    models: str | None = typer.Option(
        None,
        "--models",
        help="Comma list of presets (mlcost models) or sizes (350m, 7b). "
        "Default with --target-loss: 0.25x-4x the compute-optimal size plus the inference-aware optimum.",
    ),
    family: str = typer.Option("llama", "--family", help=f"Shape of sized models: {', '.join(FAMILIES)}."),
    scaling_law: str = typer.Option(
        "hoffmann", "--scaling-law", help=f"Loss law constants: {', '.join(SCALING_LAWS)}."
    ),
    prompt_len: int = typer.Option(1024, "--prompt-len", help="Prompt tokens per request."),
    output_len: int = typer.Option(256, "--output-len", help="Output tokens per request."),
    horizon: str = typer.Option("1y", "--horizon", help="Serving period after training (e.g. 6mo, 2y)."),
    train_device: str = typer.Option("h100-sxm", "--train-device", help="Training device (mlcost devices)."),
    train_gpus: int = typer.Option(256, "--train-gpus", help="Training devices."),
    seq_len: int | None = typer.Option(
        None, "--seq-len", help="Training sequence length [model preset's recipe, else min(context, 4096)]."
    ),
    global_batch: int | None = typer.Option(
        None,
        "--global-batch",
        help="Training sequences per step [model preset's recipe, else ≈4M/1M tokens].",
    ),
    train_precision: str = typer.Option("bf16", "--train-precision", help=f"One of {', '.join(PRECISIONS)}."),
    serve_device: str = typer.Option("h100-sxm", "--serve-device", help="Serving device."),
    serve_precision: str = typer.Option(
        "bf16", "--serve-precision", help=f"Serving weights: {', '.join(WEIGHT_PRECISIONS)}."
    ),
    serve_tp: int | None = typer.Option(
        None, "--serve-tp", help="Serving TP (default: cheapest of 1,2,4,8)."
    ),
    max_batch: int = typer.Option(64, "--max-batch", help="Largest serving batch tried."),
    tpot_ms: float | None = typer.Option(None, "--tpot-ms", help="Limit on time per output token (ms)."),
    provider: str | None = typer.Option(
        None, "--provider", help="Price rows of this provider (default cheapest)."
    ),
    pricing: str = typer.Option("on-demand", "--pricing", help=f"One of {', '.join(PRICINGS)}."),
    discount_rate: float = typer.Option(
        0.0, "--discount-rate", help="Annual discount rate for NPV (0.08 = 8%)."
    ),
    revenue: float | None = typer.Option(
        None,
        "--revenue-per-million-tokens-usd",
        help="Revenue per million output tokens: adds NPV, ROI, payback.",
    ),
    catalog_files: list[Path] | None = typer.Option(
        None, "--catalog", help="Extra catalog override file (TOML)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (docs/tco.md)."),
    fmt: str = format_option(),
    explain: bool = explain_option(),
) -> None:
    """Total cost of ownership: train each candidate size once, serve the traffic over the horizon, and
    report the cheapest size and the traffic at which the choice flips (break-even).

    --target-loss X: every candidate is trained on the tokens it needs to reach loss X (Hoffmann et al.
    2022 compute-optimal vs Sardana et al. 2023 inference-aware over-training). --train-tokens D: every
    candidate (--models) trains on D tokens. Bad input exits 2.
    """
    from mlcost.context import default_catalog

    if (target_loss is None) == (train_tokens is None):
        raise SpecError(
            "give exactly one of --target-loss and --train-tokens",
            hint="--target-loss trains each size to a quality target; --train-tokens gives all the same data",
        )
    catalog = default_catalog(catalog_files or None)
    law = get_scaling_law(scaling_law)
    traffic = Traffic(
        output_tokens_per_day=parse_count(tokens_per_day, what="--tokens-per-day"),
        prompt_len=prompt_len,
        output_len=output_len,
    )
    horizon_s = parse_duration_s(horizon)
    if family not in FAMILIES:
        from mlcost.errors import UnknownNameError

        raise UnknownNameError("model family", family, FAMILIES)
    specs = parse_models(models, family=family, catalog=catalog) if models else None
    candidates: list[Candidate]
    if target_loss is not None:
        candidates = target_loss_candidates(
            law, target_loss, traffic=traffic, horizon_s=horizon_s, family=family, models=specs
        )
    else:
        assert train_tokens is not None
        if not specs:
            raise SpecError("--train-tokens needs --models", hint="e.g. --models llama-3.1-8b,llama-3.1-70b")
        d = parse_count(train_tokens, what="--train-tokens")
        if d <= 0:
            raise SpecError("--train-tokens must be positive")
        candidates = [Candidate(model=m, train_tokens=d, role="given") for m in specs]
    cluster_kw: dict[str, Any] = {"provider": provider, "pricing": pricing}
    result = tco(
        candidates,
        law=law,
        traffic=traffic,
        horizon_s=horizon_s,
        train=TrainSetup(
            cluster=Cluster(device=train_device, count=train_gpus, **cluster_kw),
            seq_len=seq_len,
            global_batch=global_batch,
            precision=train_precision,  # type: ignore[arg-type]  # validated by TrainJob
        ),
        serve=ServeSetup(
            cluster=Cluster(device=serve_device, count=1, **cluster_kw),
            weight_precision=serve_precision,  # type: ignore[arg-type]  # validated by ServeJob
            tp=serve_tp,
            max_batch=max_batch,
            tpot_target_s=None if tpot_ms is None else tpot_ms / 1e3,
        ),
        target_loss=target_loss,
        discount_rate=discount_rate,
        revenue_per_million_tokens_usd=revenue,
        catalog=catalog,
    )
    from mlcost.report.tco import view

    emit(result.to_dict(), view, fmt=fmt, as_json=as_json, explain=explain)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("tco")(tco_command)
