"""``mlcost data``: cut a corpus (exact/near duplicates, quality, PII, decontamination) and price the tokens
saved with the training estimator."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import typer


def _eval_texts(path: Path, text_field: str) -> Any:
    """Texts of the evaluation set (every line must be readable: a bad eval set is fatal)."""
    import json

    from mlcost.dataprep import io

    files, _ = io.list_inputs(path, flag="--eval")
    if not files:
        raise io.DataInputError(
            f"--eval {path}: no JSONL, Parquet or .txt files", hint="pass the evaluation set"
        )
    for item in io.iter_items(path, files):
        try:
            obj = json.loads(item.raw.decode("utf-8"))
            text = obj[text_field] if isinstance(obj, dict) else None
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError):
            text = None
        if not isinstance(text, str):
            raise io.DataInputError(
                f"--eval {path}: {item.source} line {item.line} has no string field {text_field!r}",
                hint="fix the line or pass --eval-text-field",
            )
        yield text


def _render(result: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    docs, tok = result["documents"], result["tokens"]
    console.print(
        f"[bold]mlcost data[/bold]  {result['input']} → {result['output'] or '(not written: no --output)'}\n"
        f"read {docs['read']:,} documents, kept {docs['kept']:,}, removed {docs['removed']:,}, "
        f"unreadable {docs['unreadable']:,}; tokens {tok['before']:,} → {tok['after']:,} ({tok['tokenizer']})"
    )
    t = Table(title="Removed by reason")
    for col in ("reason", "documents", "tokens", "share of tokens"):
        t.add_column(col, justify="left" if col == "reason" else "right")
    for reason, v in result["removed_by_reason"].items():
        share = v["tokens"] / tok["before"] if tok["before"] else 0.0
        t.add_row(reason, f"{v['documents']:,}", f"{v['tokens']:,}", f"{share:.2%}")
    console.print(t)
    if result["quality_filters"]:
        console.print(
            "quality filters: "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(result["quality_filters"].items()))
        )
    dc = result["decontamination"]
    if dc["enabled"]:
        console.print(
            f"decontamination (reported apart): {dc['documents']:,} documents, {dc['tokens']:,} tokens"
        )
    pii = result["pii"]
    if pii["documents_redacted"]:
        console.print(
            f"PII redacted in {pii['documents_redacted']:,} kept documents: "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(pii["replacements"].items()))
        )
    errs = result["errors"]
    if errs["count"]:
        shown = "; ".join(f"{e['source']}:{e['line']} {e['error']}" for e in errs["listed"][:5])
        more = f" (+{errs['count'] - 5} more in removed.jsonl)" if errs["count"] > 5 else ""
        console.print(f"[yellow]{errs['count']:,} unreadable lines skipped[/yellow]: {shown}{more}")
    if result["skipped_files"]:
        console.print(f"files ignored (unknown type): {', '.join(result['skipped_files'][:10])}")
    price = result.get("price")
    if price:
        _render_price(price, console)


def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "n/a (no price)"
    return f"{v:.3g} {unit}"


def _render_price(price: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    title = (
        f"Saved on {price['model']}, {price['gpus']}× {price['device']} ({price['framing']}, "
        f"{price['epochs']:g} epoch(s); error band ±{price['error_band']['relative']:.0%}+)"
    )
    t = Table(title=title)
    for col in ("", "before", "after", "saved", "saved: low – high"):
        t.add_column(col, justify="left" if not col else "right")
    units = {
        "device_hours": "GPU-h",
        "cost_usd": "$",
        "energy_kwh": "kWh",
        "co2_kg": "kg",
        "total_time_s": "s",
    }
    t.add_row(
        "tokens",
        f"{price['trained_tokens_before']:.3g}",
        f"{price['trained_tokens_after']:.3g}",
        f"{price['saved']['tokens']:.3g}",
        "",
    )
    for k, unit in units.items():
        rng = price["saved_ranges"].get(k)
        t.add_row(
            k,
            _fmt(price["before"][k], unit),
            _fmt(price["after"][k], unit),
            _fmt(price["saved"][k], unit),
            "" if rng is None else f"{rng[0]:.3g} – {rng[1]:.3g}",
        )
    console.print(t)
    if price["framing"] == "same-compute":
        console.print(
            f"same compute: the clean corpus is trained for {price['clean_epochs']:.3g} epochs to the same token "
            "budget, so nothing is saved in $; the gain is quality (no budget spent on duplicates or filtered text)."
        )


def data(
    input_path: Path = typer.Option(
        ..., "--input", "-i", help="A JSONL (.gz/.zst), Parquet or .txt file, or a folder of them."
    ),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Output folder (kept.jsonl, removed.jsonl, report.json) [none: measure only].",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --output folder."),
    text_field: str = typer.Option("text", "--text-field", help="JSON key holding the document text."),
    id_field: str = typer.Option(
        "id", "--id-field", help="JSON key of the document id [source:line when absent]."
    ),
    cuts: str = typer.Option("exact,near,quality", "--cuts", help="Comma list of exact, near, quality, pii."),
    on_error: str = typer.Option(
        "skip", "--on-error", help="Malformed lines: skip (listed, kept in removed.jsonl) or fail."
    ),
    eval_path: Path | None = typer.Option(
        None, "--eval", help="Evaluation set to decontaminate against (same formats)."
    ),
    eval_text_field: str | None = typer.Option(
        None, "--eval-text-field", help="Text key of --eval [--text-field]."
    ),
    decontam_ngram: int = typer.Option(
        13, "--decontam-ngram", min=1, help="Words per n-gram for decontamination."
    ),
    num_perm: int = typer.Option(128, "--num-perm", help="MinHash permutations."),
    shingle_size: int = typer.Option(3, "--shingle-size", help="Words per MinHash shingle."),
    near_threshold: float = typer.Option(
        0.5, "--near-threshold", help="Jaccard threshold of near duplicates."
    ),
    bands: int | None = typer.Option(
        None, "--bands", help="LSH bands [datasketch's optimum for the threshold]."
    ),
    rows: int | None = typer.Option(None, "--rows", help="LSH rows per band (with --bands)."),
    quality_file: Path | None = typer.Option(
        None, "--quality-file", help="TOML table replacing the quality filters."
    ),
    tokenizer: str = typer.Option("minilm", "--tokenizer", help="minilm, bytes, or a tokenizer.json path."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Processes [CPU count]."),
    model: str = typer.Option("llama-3.1-8b", "--model", "-m", help="Target model preset (mlcost models)."),
    device: str = typer.Option("h100-sxm", "--device", "-d", help="Target device (mlcost devices)."),
    gpus: int = typer.Option(8, "--gpus", "-n", min=1, help="Devices in the target job."),
    seq_len: int | None = typer.Option(
        None, "--seq-len", help="Tokens per sequence [2048, capped at the context]."
    ),
    global_batch: int | None = typer.Option(None, "--global-batch", help="Sequences per step [≈1M tokens]."),
    precision: str = typer.Option("bf16", "--precision", help="fp32, tf32, bf16, fp16 or fp8."),
    pricing: str = typer.Option("on-demand", "--pricing", help="on-demand or spot."),
    provider: str | None = typer.Option(None, "--provider", help="Cloud provider for the price [cheapest]."),
    region: str | None = typer.Option(None, "--region", help="Region for price and carbon."),
    epochs: float = typer.Option(1.0, "--epochs", help="Passes over the corpus before the cut."),
    framing: str = typer.Option(
        "same-epochs", "--framing", help="same-epochs (fewer tokens) or same-compute (more epochs)."
    ),
    scale_to: str | None = typer.Option(
        None, "--scale-to", help="Price a corpus of this many tokens (e.g. 15T) with the measured kept share."
    ),
    no_price: bool = typer.Option(False, "--no-price", help="Only cut; do not price."),
    catalog: list[Path] | None = typer.Option(None, "--catalog", help="Extra catalog TOML file(s)."),
    json_out: bool = typer.Option(
        False, "--json", help="Print one JSON object (docs/json.md, docs/data.md)."
    ),
) -> None:
    """Cut duplicates, low-quality text and PII from a corpus and price the tokens saved."""
    from mlcost.dataprep import CutConfig, JobTarget, price_cut, run_pipeline
    from mlcost.dataprep.decontam import EvalIndex
    from mlcost.dataprep.minhash import NearDupConfig
    from mlcost.report.jsonout import dumps
    from mlcost.units import parse_count

    cut_list = tuple(c.strip() for c in cuts.split(",") if c.strip())
    from mlcost.context import default_catalog

    target = None
    if not no_price:
        target = JobTarget(
            model=model,
            device=device,
            gpus=gpus,
            seq_len=seq_len,
            global_batch=global_batch,
            precision=precision,
            pricing=pricing,
            provider=provider,
            region=region,
            epochs=epochs,
            framing=framing,  # type: ignore[arg-type]
            scale_to_tokens=parse_count(scale_to, what="--scale-to") if scale_to else None,
            catalog_paths=tuple(catalog or ()),
            catalog=default_catalog(catalog or None),
        )
        from mlcost.dataprep.price import estimate_tokens

        estimate_tokens(target, 1e9)  # validate model/device/layout before reading the corpus
    near = NearDupConfig(
        num_perm=num_perm, shingle_size=shingle_size, threshold=near_threshold, bands=bands, rows=rows
    )
    eval_index = None
    if eval_path is not None:
        eval_index = EvalIndex.build(_eval_texts(eval_path, eval_text_field or text_field), n=decontam_ngram)
    cfg = CutConfig(
        cuts=cut_list,
        text_field=text_field,
        id_field=id_field,
        on_error=on_error,
        near=near,
        quality_file=quality_file,
        eval_index=eval_index,
        tokenizer=tokenizer,
        workers=workers or os.cpu_count() or 1,
    )

    def finalize(res: Any) -> None:
        if target is not None:
            res.price = price_cut(res.tokens_before, res.tokens_after, target).to_dict()

    def on_term(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        if sys.stderr.isatty() and not json_out:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            from mlcost.report.console import make_console

            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                transient=True,
                console=make_console(stderr=True),  # progress on stderr; stdout keeps the table
            ) as bar:
                task = bar.add_task("reading", total=None)

                def progress(n_docs: int, n_bytes: int) -> None:
                    bar.update(task, description=f"{n_docs:,} documents, {n_bytes / 1e6:,.1f} MB")

                result = run_pipeline(
                    input_path, output, cfg, overwrite=overwrite, progress=progress, finalize=finalize
                )
        else:
            result = run_pipeline(input_path, output, cfg, overwrite=overwrite, finalize=finalize)
    finally:
        signal.signal(signal.SIGTERM, old)
    if json_out:
        typer.echo(dumps(result.to_dict()))
        return
    from mlcost.report.console import make_console

    _render(result.to_dict(), make_console())


def register(app: typer.Typer) -> None:
    """Add ``mlcost data`` to the app."""
    app.command("data")(data)
