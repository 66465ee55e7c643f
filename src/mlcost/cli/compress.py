"""`mlcost compress`: quantize, prune and distill a model, measure every variant on this machine (interleaved,
with intervals), price it, and say which variant is cheapest at the quality needed — and whether the saving
is real here. torch & co. are imported inside the command, so ``mlcost --help`` stays light."""

from __future__ import annotations

import sys
from typing import Any

import typer

from mlcost.errors import MlcostError


def _csv_ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError as exc:
        raise MlcostError(
            f"{flag} {text!r}: not a comma-separated list of integers", hint="e.g. 1,32"
        ) from exc
    if not values or any(v < 1 for v in values):
        raise MlcostError(f"{flag} {text!r}: batch sizes must be integers >= 1", hint="e.g. 1,32")
    return values


def _fmt_ci(d: dict[str, float], fmt: str = "{:.2f}", suffix: str = "") -> str:
    return f"{fmt.format(d['value'])}{suffix} [{fmt.format(d['low'])}, {fmt.format(d['high'])}]"


def _fmt_quality(m: dict[str, Any]) -> str:
    if m["scale"] == "fraction":
        return f"{m['value'] * 100:.1f}% ({m['delta'] * 100:+.1f} pt [{m['delta_low'] * 100:+.1f}, {m['delta_high'] * 100:+.1f}])"
    return f"{m['value']:.4g} ({m['delta']:+.3g} [{m['delta_low']:+.3g}, {m['delta_high']:+.3g}])"


def render(report: dict[str, Any], file: Any = None) -> None:
    """Print the variants table, the verdicts and the choice."""
    from rich.console import Console
    from rich.table import Table

    from mlcost.units import format_bytes

    console = Console(file=file or sys.stdout, width=200, color_system=None, highlight=False)
    hw = report["hardware"]
    task = report["task"]
    primary = task["primary_metric"]
    console.print(
        f"mlcost compress: {report['model']['name']} ({report['model']['source']}) on {hw['model']} "
        f"[torch {hw['torch_capability']}, {hw['threads']} threads]"
    )
    console.print(
        f"task: {task['name']}; primary metric: {primary}; target: "
        + ", ".join(t["text"] + f" on {t['metric']}" for t in report["targets"])
    )
    console.print(
        f"timing: {report['rounds']} interleaved rounds per batch size {report['batch_sizes']}; speed-up = "
        "throughput vs fp32 at the largest batch with a 95% bootstrap interval over rounds"
    )
    table = Table(show_lines=False)
    big = str(max(report["batch_sizes"]))
    small = str(min(report["batch_sizes"]))
    for col in (
        "variant",
        "speed-up",
        f"p50/p95 @{small}",
        f"thru @{big} /s",
        "size",
        "peak mem",
        primary,
        "cost /M req",
        "status",
    ):
        table.add_column(col)
    price_known = report["price"]["usd_per_h"] is not None
    for r in report["variants"]:
        if r["status"] != "ok":
            table.add_row(r["name"], "-", "-", "-", "-", "-", "-", "-", f"{r['status']}: {r['reason'][:70]}")
            continue
        s_small = r["speeds"][small]
        cost = r["cost"]
        cost_s = (
            f"${cost['usd_per_million_requests']:.3g}"
            if price_known
            else f"{cost['machine_h_per_million_requests']:.3g} h"
        )
        table.add_row(
            r["name"],
            _fmt_ci(r["speedup"], suffix="×"),
            f"{s_small['latency_p50_s'] * 1e3:.2f}/{s_small['latency_p95_s'] * 1e3:.2f} ms",
            f"{r['throughput_per_s']:.4g}",
            format_bytes(r["size_bytes"]),
            format_bytes(r["peak_memory_bytes"]),
            _fmt_quality(r["quality"][primary]),
            cost_s,
            "recommended"
            if r["verdict"]["recommended"]
            else ("baseline" if r["method"] == "original" else "-"),
        )
    console.print(table)
    others = [m for m in task["metrics"] if m != primary]
    for r in report["variants"]:
        if r["status"] == "ok" and r["method"] != "original" and others:
            console.print(
                f"  {r['name']}: " + "; ".join(f"{m} {_fmt_quality(r['quality'][m])}" for m in others)
            )
    for r in report["variants"]:
        if r["status"] == "ok" and r.get("targets"):
            for t in r["targets"]:
                if t["status"] == "ok" and t.get("usd_per_million_requests") is not None:
                    console.print(
                        f"  {r['name']} on {t['device']} (estimated): ${t['usd_per_million_requests']:.3g} "
                        f"per million requests, {t['requests_per_s']:.4g} req/s ({t['assumption']})"
                    )
                elif t["status"] != "ok":
                    console.print(f"  {r['name']} on {t['device']}: not estimated ({t['reason']})")
        if r["status"] == "ok" and r.get("training"):
            t = r["training"]
            be = r.get("break_even_requests")
            console.print(
                f"  {r['name']} training: {t['time_s']:.1f} s, {t['flops']:.3g} FLOPs, {t['energy_j']:.0f} J "
                f"({t['energy_source']})"
                + (f", ${t['cost_usd']:.4f}" if t["cost_usd"] is not None else "")
                + (
                    f"; pays back after {be:.3g} requests"
                    if be
                    else "; never pays back (not cheaper to serve)"
                )
            )
    console.print("verdicts:")
    for r in report["variants"]:
        console.print(f"  {r['verdict']['text']}")
    console.print(f"price: {report['price']['source']}")
    console.print(f"pareto front (cost vs {primary}): {', '.join(report['pareto_front'])}")
    console.print(f"choice: {report['choice']['message']}")
    if report.get("ledger_run_ids"):
        console.print(f"ledger: {len(report['ledger_run_ids'])} records (mlcost runs)")


def compress_command(
    example: str | None = typer.Option(
        None, "--example", help="Built-in model: minilm, digits-cnn, tiny-gpt."
    ),
    model: str | None = typer.Option(None, "--model", help="A Hugging Face model directory or hub id."),
    data: str | None = typer.Option(
        None, "--data", help="Labelled evaluation data (.jsonl or .csv: text,label)."
    ),
    methods: str | None = typer.Option(
        None,
        "--methods",
        help="Comma list, e.g. int8-dynamic,bf16,prune-ffn:0.5,distill:3 (default: by model).",
    ),
    max_quality_drop: str = typer.Option(
        "1%", "--max-quality-drop", help="1% (relative), 1pt (points), 0.02 (absolute), or metric=... terms."
    ),
    batch_sizes: str = typer.Option(
        "1,32", "--batch-sizes", help="Batch sizes to time (cost uses the largest)."
    ),
    rounds: int = typer.Option(12, "--rounds", help="Interleaved timing rounds."),
    price_usd_per_h: float | None = typer.Option(None, "--price-usd-per-h", help="This machine's price."),
    device: list[str] = typer.Option([], "--device", help="Also price on this catalog device (repeatable)."),
    force: bool = typer.Option(False, "--force", help="Run bf16/fp16 even without units for them."),
    recover_steps: int = typer.Option(0, "--recover-steps", help="Recovery fine-tune steps after pruning."),
    distill_steps: int = typer.Option(200, "--distill-steps", help="Training steps of a distilled student."),
    save: str | None = typer.Option(None, "--save", help="Save every variant under this directory."),
    threads: int | None = typer.Option(None, "--threads", help="torch threads (default: torch's)."),
    ledger: str | None = typer.Option(
        None, "--ledger", help="Ledger path or SQL URL (default MLCOST_LEDGER)."
    ),
    no_ledger: bool = typer.Option(False, "--no-ledger", help="Do not record the variants in the ledger."),
    json_out: bool = typer.Option(False, "--json", help="Print the JSON contract (docs/json.md)."),
) -> None:
    """Quantize, prune and distill a model; measure, price and choose the cheapest variant at the quality
    needed on this machine."""
    if (example is None) == (model is None):
        raise MlcostError(
            "give exactly one of --example NAME or --model DIR_OR_HUB_ID",
            hint="e.g. mlcost compress --example minilm",
        )
    if rounds < 3:
        raise MlcostError(f"--rounds {rounds}: at least 3 are needed for the speed-up interval")
    if recover_steps < 0 or distill_steps < 1:
        raise MlcostError("--recover-steps must be >= 0 and --distill-steps >= 1")
    if price_usd_per_h is not None and price_usd_per_h < 0:
        raise MlcostError(f"--price-usd-per-h {price_usd_per_h}: a price cannot be negative")
    sizes = _csv_ints(batch_sizes, "--batch-sizes")
    from mlcost.errors import require

    require("torch", "mlcost compress", "compress")
    import torch

    from mlcost.compress import models, pipeline, recipes, tasks

    if threads is not None:
        if threads < 1:
            raise MlcostError(f"--threads {threads}: must be >= 1")
        torch.set_num_threads(threads)
    method_list = recipes.parse_methods(methods) if methods else None
    for d in device:
        _check_device(d)
    if example is not None:
        from mlcost.paths import cache_dir

        bundle = models.load_example(example, str(cache_dir()))
        task = tasks.task_from_file(bundle, data) if data else tasks.example_task(bundle, example)
    else:
        assert model is not None
        bundle = models.load_model(model)
        if data is None:
            raise MlcostError(
                "--model needs --data FILE (labelled .jsonl or .csv) to score quality",
                hint='one {"text": ..., "label": ...} per line',
            )
        task = tasks.task_from_file(bundle, data)
    from mlcost.context import default_catalog

    opts = pipeline.Options(
        methods=method_list,
        batch_sizes=sizes,
        rounds=rounds,
        max_quality_drop=max_quality_drop,
        price_usd_per_h=price_usd_per_h,
        devices=list(device),
        force=force,
        recover_steps=recover_steps,
        distill_steps=distill_steps,
        ledger=not no_ledger,
        ledger_url=ledger,
        catalog=default_catalog(),
        save_dir=save,
    )
    report = pipeline.compress(bundle, task, opts)
    if json_out:
        from mlcost.report.jsonout import dumps

        typer.echo(dumps(report))
    else:
        render(report)


def _check_device(device_id: str) -> None:
    """Fail fast on an unknown --device (the one catalog call of this command)."""
    from mlcost.context import default_catalog

    default_catalog().device(device_id)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("compress")(compress_command)
