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

from mlcost.cli import options
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
from mlcost.spec.validate import token_count

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
                    token_count(item, "--models size", maximum=1e15), family, name=f"{family}-{item.lower()}"
                )
            )
        else:
            out.append(catalog.model(item))
    if not out:
        raise SpecError("--models is empty", hint="give presets or sizes, e.g. --models llama-3.1-8b,3b")
    return out


def tco_command(
    tokens_per_day: float = options.token_count(
        ..., "--tokens-per-day", help="Expected serving traffic: output tokens per day (e.g. 1e9, 2B)."
    ),
    target_loss: float | None = options.positive_float(
        None,
        "--target-loss",
        maximum=100.0,
        help="Quality target (nats/token under the scaling law): each size trains to reach it.",
    ),
    train_tokens: float | None = options.token_count(
        None, "--train-tokens", help="Same data budget for every candidate (e.g. 2T); needs --models."
    ),
    models: str | None = typer.Option(
        None,
        "--models",
        help="Comma list of presets (mlcost models) or sizes (350m, 7b). "
        "Default with --target-loss: 0.25x-4x the compute-optimal size plus the inference-aware optimum.",
    ),
    family: str = options.choice(
        "llama", "--family", choices=FAMILIES, help=f"Shape of sized models: {', '.join(FAMILIES)}."
    ),
    scaling_law: str = options.choice(
        "hoffmann",
        "--scaling-law",
        choices=SCALING_LAWS,
        help=f"Loss law constants: {', '.join(SCALING_LAWS)}.",
    ),
    prompt_len: int = options.positive_int(1024, "--prompt-len", help="Prompt tokens per request."),
    output_len: int = options.positive_int(256, "--output-len", help="Output tokens per request."),
    horizon: float = options.duration(
        "1y", "--horizon", help="Serving period after training (e.g. 6mo, 2y)."
    ),
    train_device: str = typer.Option("h100-sxm", "--train-device", help="Training device (mlcost devices)."),
    train_gpus: int = options.positive_int(256, "--train-gpus", help="Training devices."),
    seq_len: int | None = options.positive_int(
        None, "--seq-len", help="Training sequence length [model preset's recipe, else min(context, 4096)]."
    ),
    global_batch: int | None = options.positive_int(
        None,
        "--global-batch",
        help="Training sequences per step [model preset's recipe, else ≈4M/1M tokens].",
    ),
    train_precision: str = options.choice(
        "bf16", "--train-precision", choices=PRECISIONS, help=f"One of {', '.join(PRECISIONS)}."
    ),
    serve_device: str = typer.Option("h100-sxm", "--serve-device", help="Serving device."),
    serve_precision: str = options.choice(
        "bf16",
        "--serve-precision",
        choices=WEIGHT_PRECISIONS,
        help=f"Serving weights: {', '.join(WEIGHT_PRECISIONS)}.",
    ),
    serve_tp: int | None = options.positive_int(
        None, "--serve-tp", help="Serving TP (default: cheapest of 1,2,4,8)."
    ),
    max_batch: int = options.positive_int(
        64, "--max-batch", maximum=1_000_000, help="Largest serving batch tried."
    ),
    tpot_ms: float | None = options.positive_float(
        None, "--tpot-ms", minimum=1e-3, maximum=1e9, help="Limit on time per output token (ms)."
    ),
    provider: str | None = typer.Option(
        None, "--provider", help="Price rows of this provider (default cheapest)."
    ),
    pricing: str = options.choice(
        "on-demand", "--pricing", choices=PRICINGS, help=f"One of {', '.join(PRICINGS)}."
    ),
    discount_rate: float = options.nonneg_float(
        0.0, "--discount-rate", maximum=10.0, help="Annual discount rate for NPV (0.08 = 8%)."
    ),
    revenue: float | None = options.money(
        None,
        "--revenue-per-million-tokens-usd",
        help="Revenue per million output tokens: adds NPV, ROI, payback.",
    ),
    catalog_files: list[Path] | None = options.text_files(
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
        output_tokens_per_day=tokens_per_day,
        prompt_len=prompt_len,
        output_len=output_len,
    )
    horizon_s = horizon
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
        candidates = [Candidate(model=m, train_tokens=train_tokens, role="given") for m in specs]
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
