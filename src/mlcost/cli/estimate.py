"""``mlcost estimate train`` and ``mlcost estimate serve``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from mlcost.cli import options
from mlcost.cli._output import emit, explain_option, format_option
from mlcost.spec.cluster import PRICINGS
from mlcost.spec.job import (
    KV_PRECISIONS,
    MOE_DISPATCHERS,
    OPTIMIZERS,
    PRECISIONS,
    RECOMPUTES,
    SCHEDULES,
    WEIGHT_PRECISIONS,
)

estimate_app = typer.Typer(
    help="Predict the cost of a training or serving job before it runs.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

#: Devices in a training job when --gpus is not given (one 8-GPU node; a CPU device runs alone).
DEFAULT_GPUS = 8
#: Chinchilla-optimal tokens per parameter (Hoffmann et al. 2022), used when --tokens is not given.
CHINCHILLA_TOKENS_PER_PARAM = 20.0


def _catalog(paths: list[Path] | None) -> Any:
    from mlcost.context import default_catalog

    return default_catalog(paths or None)


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
        None,
        "--global-batch",
        help="Sequences per optimizer step [model preset's recipe, else ≈4M/1M tokens].",
    ),
    seq_len: int | None = options.positive_int(
        None, "--seq-len", help="Tokens per sequence [model preset's recipe, else min(context, 4096)]."
    ),
    recompute: str = options.choice(
        "none",
        "--recompute",
        choices=RECOMPUTES,
        help="Activation recomputation: none, selective (attention core), full (every layer), matmuls (keep the weight "
        "matmuls' outputs, recompute the rest: MaxText remat_policy minimal), norms (recompute norms, MLA "
        "up-projections and the MLP activation, keep Linear inputs, FP8 with fp8: DeepSeek-V3).",
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
    fp8_params: bool = typer.Option(
        False,
        "--fp8-params",
        help="With --precision fp8: working weights in fp8, 1 byte each (Megatron --fp8-param-gather).",
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
    ep: int = typer.Option(1, "--ep", help="Expert-parallel degree (MoE; divides the experts and DP)."),
    ep_overlap: float = options.nonneg_float(
        0.0,
        "--ep-overlap",
        maximum=1.0,
        help="Share of the MoE all-to-all hidden behind compute, 0-1 (Megatron-Core's A2A overlap: 0.335, "
        "docs/estimate.md) [0: exposed].",
    ),
    capacity_factor: float | None = typer.Option(
        None, "--capacity-factor", help="MoE expert capacity factor [dropless, balanced load]."
    ),
    moe_dispatcher: str = options.choice(
        "alltoall",
        "--moe-dispatcher",
        choices=MOE_DISPATCHERS,
        help="MoE token dispatcher: alltoall (a copy per token-expert pair) or deepep (once per node) [alltoall].",
    ),
    moe_node_limit: int | None = options.positive_int(
        None, "--moe-node-limit", help="Most nodes a token's experts may sit on [the model's routing; none]."
    ),
    schedule: str = options.choice(
        "1f1b",
        "--schedule",
        choices=SCHEDULES,
        help="Pipeline schedule: 1f1b, interleaved (with --virtual-stages), zb-h1, dualpipe (DeepSeek-V3: even --pp).",
    ),
    objective: str | None = typer.Option(
        None, "--objective", help="Training objective: clm (causal LM) or mlm (masked LM) [by model kind]."
    ),
    framework: str | None = typer.Option(
        None,
        "--framework",
        help="Framework family whose efficiency profile to use: fsdp, maxtext, megatron, nemo (rows <device>/<family> in the catalog) [the device's default profile].",
    ),
    fmt: str = format_option(),
    explain: bool = explain_option(),
) -> None:
    """Predict FLOPs, memory, time, energy, dollars and CO2 of a training job."""
    from mlcost.catalog import resolve_model
    from mlcost.estimate import count_params, estimate_train
    from mlcost.estimate.result import Assumption
    from mlcost.spec import TrainJob

    cat = _catalog(catalog)
    spec = resolve_model(model, cat)
    if objective is not None:
        from mlcost.errors import SpecError

        if objective not in ("clm", "mlm"):
            raise SpecError(
                f"--objective {objective!r} is not one of clm, mlm", hint="pass --objective clm or mlm"
            )
        if objective == "mlm" and spec.kind != "encoder":
            raise SpecError(
                f"--objective mlm needs an encoder; {spec.name} is a decoder", hint="use --objective clm"
            )
        spec = spec.replace(objective=objective)
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
    if seq_len is None or global_batch is None:
        from mlcost.plan.defaults import train_defaults

        dflt = train_defaults(spec, seq_len, global_batch)
        if seq_len is None:
            seq_len = dflt.seq_len
            extra.append(Assumption("seq_len", seq_len, f"not given: {dflt.seq_len_source}; pass --seq-len"))
        if global_batch is None:
            dp = max(gpus // (tp * pp), 1)
            unit = micro_batch * dp
            global_batch = max(unit, math.ceil(dflt.global_batch / unit) * unit)
            rounded = (
                ""
                if global_batch == dflt.global_batch
                else f" (rounded up from {dflt.global_batch} to a multiple of micro-batch × DP = {unit})"
            )
            extra.append(
                Assumption(
                    "global_batch",
                    global_batch,
                    f"not given: {dflt.global_batch_source}{rounded}; pass --global-batch",
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
        ep=ep,
        capacity_factor=capacity_factor,
        ep_overlap=ep_overlap,
        moe_dispatcher=moe_dispatcher,
        moe_node_limit=moe_node_limit,
        schedule=schedule,  # type: ignore[arg-type]
        fp8_params=fp8_params,
    )
    cluster = _cluster(device, gpus, gpus_per_node, provider, region, pricing, price, pue, carbon)
    est = estimate_train(spec, job, cluster, catalog=cat, framework=framework)
    est.assumptions.extend(extra)
    from mlcost.report.estimate import train_view

    emit(est.to_dict(), train_view, fmt=fmt, as_json=json_out, explain=explain)


#: Requests the simulator draws when --requests is not given (and no --requests-file sets them).
DEFAULT_SIM_REQUESTS = 2000
ENGINE_CHOICES = ("vllm", "sglang", "trtllm", "hf")
BATCHING_CHOICES = ("static", "continuous")
LENGTH_DIST_CHOICES = ("fixed", "uniform", "exponential", "lognormal")
PREFIX_BLOCK_CHOICES = ("shared", "per-sequence")


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
    batch: int = options.positive_int(
        1, "--batch", "-b", help="Concurrent sequences decoded together (static)."
    ),
    prompt_len: int = options.positive_int(
        1024, "--prompt-len", "--prompt-tokens", help="Prompt tokens per request (mean with --prompt-dist)."
    ),
    output_len: int = options.positive_int(
        256, "--output-len", "--output-tokens", help="Generated tokens per request (mean with --output-dist)."
    ),
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
    engine: str | None = options.choice(
        None,
        "--engine",
        choices=ENGINE_CHOICES,
        help="Serving engine (engines.csv) [vllm on GPUs, hf on CPUs].",
    ),
    batching: str | None = options.choice(
        None,
        "--batching",
        choices=BATCHING_CHOICES,
        help="static (closed form) or continuous (simulator) [continuous when a rate/concurrency/file is given].",
    ),
    rps: float | None = options.positive_float(
        None, "--rps", minimum=1e-9, maximum=1e6, help="Poisson arrival rate, requests/s (continuous)."
    ),
    concurrency: int | None = options.positive_int(
        None, "--concurrency", maximum=100_000, help="Closed-loop clients (continuous)."
    ),
    n_requests: int | None = options.positive_int(
        None, "--requests", maximum=10_000_000, help="Requests to simulate [2000, or the file's rows]."
    ),
    requests_file: Path | None = options.text_files(
        None, "--requests-file", help="CSV/JSONL of prompt_tokens,output_tokens[,arrival_s] per request."
    ),
    prompt_dist: str = options.choice(
        "fixed", "--prompt-dist", choices=LENGTH_DIST_CHOICES, help="Prompt length distribution."
    ),
    output_dist: str = options.choice(
        "fixed", "--output-dist", choices=LENGTH_DIST_CHOICES, help="Output length distribution."
    ),
    prefix_share: float = options.nonneg_float(
        0.0, "--prefix-share", maximum=0.99, help="Share of each prompt hit in the prefix cache."
    ),
    prefix_blocks: str = options.choice(
        "shared",
        "--prefix-blocks",
        choices=PREFIX_BLOCK_CHOICES,
        help="The hit's KV blocks: shared (one common prefix, held once) or per-sequence (distinct prefixes).",
    ),
    max_batched_tokens: int | None = options.positive_int(
        None, "--max-num-batched-tokens", maximum=10_000_000, help="Token budget per iteration [8192]."
    ),
    max_num_seqs: int = options.positive_int(
        256, "--max-num-seqs", maximum=100_000, help="Most running sequences."
    ),
    chunked_prefill: bool = typer.Option(
        True, "--chunked-prefill/--no-chunked-prefill", help="Split prompts and mix them with decodes."
    ),
    kv_block_size: int = options.positive_int(
        16, "--kv-block-size", maximum=1 << 30, help="Tokens per KV block."
    ),
    gpu_memory_fraction: float = options.fraction(
        0.9, "--gpu-memory-fraction", help="Share of device memory the engine uses."
    ),
    spec_draft_tokens: int = options.nonneg_int(
        0, "--spec-draft-tokens", maximum=64, help="Speculative decoding draft length (0 = off)."
    ),
    spec_acceptance: float = options.nonneg_float(
        0.0, "--spec-acceptance", maximum=0.999, help="Draft token acceptance rate, [0, 1)."
    ),
    seed: int = options.nonneg_int(0, "--seed", help="Seed of the simulated workload."),
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
    fmt: str = format_option(),
    explain: bool = explain_option(),
) -> None:
    """Predict latency, throughput, memory and $ per million tokens of serving a model: the static closed
    form (one batch prefilled together), or with --rps/--concurrency the continuous-batching simulator
    (TTFT/ITL/E2E p50/p90/p99 with queueing)."""
    from mlcost.catalog import resolve_model
    from mlcost.errors import SpecError

    traffic = [n for n, v in (("--rps", rps), ("--concurrency", concurrency)) if v is not None]
    if len(traffic) > 1:
        raise SpecError(
            "give at most one of --rps and --concurrency", hint="--rps for open-loop Poisson arrivals"
        )
    mode = batching or ("continuous" if traffic or requests_file is not None else "static")
    cat = _catalog(catalog)
    spec = resolve_model(model, cat)
    cluster = _cluster(device, gpus or tp, gpus_per_node, provider, region, pricing, price, pue, carbon)
    if mode == "static":
        if traffic or requests_file is not None:
            raise SpecError(
                f"--batching static takes no {(traffic or ['--requests-file'])[0]}",
                hint="drop it, or use --batching continuous",
            )
        from mlcost.estimate import estimate_serve
        from mlcost.spec import ServeJob

        job = ServeJob(
            prompt_len=prompt_len,
            output_len=output_len,
            batch=batch,
            tp=tp,
            weight_precision=weight_precision,  # type: ignore[arg-type]
            kv_precision=kv_precision,  # type: ignore[arg-type]
        )
        est = estimate_serve(
            spec,
            job,
            cluster,
            catalog=cat,
            engine=engine,
            prefix_share=prefix_share,
            share_prefix_blocks=prefix_blocks == "shared",
        )
        from mlcost.report.estimate import serve_view

        emit(est.to_dict(), serve_view, fmt=fmt, as_json=json_out, explain=explain)
        return

    from mlcost.estimate.serve import estimate_serve_sim
    from mlcost.estimate.serve_sim import EngineConfig
    from mlcost.estimate.serve_workload import Workload, read_request_file

    lengths = read_request_file(requests_file) if requests_file is not None else None
    n = n_requests or (len(lengths.prompt_tokens) if lengths is not None else DEFAULT_SIM_REQUESTS)
    if rps is not None:
        wl = Workload.poisson(
            rps,
            n,
            prompt_len,
            output_len,
            seed=seed,
            prompt_dist=prompt_dist,
            output_dist=output_dist,
            prefix_share=prefix_share,
            max_context=spec.max_seq_len,
            lengths=lengths,
        )
    elif concurrency is not None:
        wl = Workload.closed_loop(
            concurrency,
            n,
            prompt_len,
            output_len,
            seed=seed,
            prompt_dist=prompt_dist,
            output_dist=output_dist,
            prefix_share=prefix_share,
            max_context=spec.max_seq_len,
            lengths=lengths,
        )
    elif lengths is not None and lengths.arrival_s is not None:
        wl = Workload.from_file(lengths, prefix_share=prefix_share)
    else:
        raise SpecError(
            "--batching continuous needs arrivals: --rps, --concurrency, or a --requests-file with arrival_s",
            hint="e.g. --rps 2",
        )
    cfg = EngineConfig(
        max_num_batched_tokens=max_batched_tokens,
        max_num_seqs=max_num_seqs,
        chunked_prefill=chunked_prefill,
        kv_block_size=kv_block_size,
        gpu_memory_fraction=gpu_memory_fraction,
        spec_draft_tokens=spec_draft_tokens,
        spec_acceptance=spec_acceptance,
    )
    est = estimate_serve_sim(
        spec,
        wl,
        cluster,
        tp=tp,
        weight_precision=weight_precision,
        kv_precision=kv_precision,
        config=cfg,
        catalog=cat,
        engine=engine,
        share_prefix_blocks=prefix_blocks == "shared",
    )
    from mlcost.report.estimate import serve_sim_view

    emit(est.to_dict(), serve_sim_view, fmt=fmt, as_json=json_out, explain=explain)


def register(app: typer.Typer) -> None:
    """Add ``mlcost estimate`` to the app."""
    app.add_typer(estimate_app, name="estimate")
