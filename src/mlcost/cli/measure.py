"""`mlcost measure train|serve`: train or serve a real PyTorch model under a strategy on this machine,
measure it and record the run in the ledger. ``--compare`` measures several strategies side by side and
says which pay on this hardware. ``--dry-run`` replays recorded readings (no torch needed).

Everything heavy (torch, transformers) is imported inside the commands, so ``mlcost --help`` stays light.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from mlcost.cli import options
from mlcost.errors import MlcostError

EXIT_BY_STATUS = {"completed": 0, "interrupted": 130}


class RunNotCompletedError(MlcostError):
    """A measured run ended interrupted (exit 130), failed, oom or diverged (exit 1); its record, with
    partial metrics, is in the ledger and was printed."""

    def __init__(self, record: object) -> None:
        status = getattr(record, "status", "failed")
        steps = getattr(record, "metrics", {}).get("steps_done")
        error = getattr(record, "error", None)
        super().__init__(
            f"run {getattr(record, 'run_id', '?')} {status} after {steps} steps"
            + (f": {error}" if error else ""),
            hint="its partial metrics are in the ledger (mlcost runs show RUN_ID)",
        )
        self.exit_code = EXIT_BY_STATUS.get(status, 1)


def _fmt_s(value: Any) -> str:
    from mlcost.units import format_duration

    return format_duration(value) if isinstance(value, (int, float)) else "-"


def _fmt_bytes(value: Any) -> str:
    from mlcost.units import format_bytes

    return format_bytes(value) if isinstance(value, (int, float)) and value else "-"


def _fmt_si(value: Any, unit: str) -> str:
    from mlcost.units import format_si

    return format_si(value, unit) if isinstance(value, (int, float)) else "-"


def _energy(metrics: dict[str, Any]) -> str:
    j = metrics.get("energy_j")
    if not isinstance(j, (int, float)):
        return "-"
    source = metrics.get("energy_source")
    mark = "" if source in ("nvml", "rapl") else f" ({source})"
    return f"{j:.3g} J{mark}"


def build_spec(
    model: str, *, layers: int | None, d_model: int | None, heads: int | None, vocab: int | None, seq_len: int
) -> Any:
    """The ModelSpec to measure: a preset or config.json, shrunk by the overrides."""
    from mlcost.measure.torch_models import override_spec
    from mlcost.spec.model import resolve_model

    spec = resolve_model(model)
    return override_spec(spec, layers=layers, d_model=d_model, heads=heads, vocab=vocab, min_seq_len=seq_len)


class _Bar:
    """A rich progress bar on stderr (only when stderr is a terminal and the output is not JSON)."""

    def __init__(self, enabled: bool, label: str) -> None:
        self.progress: Any = None
        self.task: Any = None
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self.progress = Progress(
                f"[bold]{label}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )

    def __enter__(self) -> _Bar:
        if self.progress is not None:
            self.progress.start()
        return self

    def __call__(self, done: int, total: int) -> None:
        if self.progress is None:
            return
        if self.task is None:
            self.task = self.progress.add_task("steps", total=total)
        self.progress.update(self.task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def _is_main_rank() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def _render_run(record: Any, ledger_location: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    m = record.metrics
    console = Console()
    title = f"{record.kind} {record.model} [{record.strategy}] on {record.device}"
    if record.world_size > 1:
        title += f" × {record.world_size}"
    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("measured", justify="right")
    table.add_column("predicted", justify="right")
    p = record.predicted
    if record.kind == "serve":
        rows = [
            ("time to first token", _fmt_s(m.get("ttft_s")), "-"),
            ("time per output token", _fmt_s(m.get("time_per_output_token_s")), "-"),
            ("output tokens/s", _fmt_si(m.get("tokens_per_s"), "tok/s"), "-"),
        ]
    else:
        rows = [
            ("step time (median)", _fmt_s(m.get("step_time_s")), _fmt_s(p.get("step_time_s"))),
            ("step time (p90)", _fmt_s(m.get("step_time_p90_s")), "-"),
            (
                "tokens/s (total)",
                _fmt_si(m.get("tokens_per_s"), "tok/s"),
                _fmt_si(p.get("tokens_per_s"), "tok/s"),
            ),
            ("tokens/s per device", _fmt_si(m.get("tokens_per_s_per_device"), "tok/s"), "-"),
            ("achieved FLOP/s", _fmt_si(m.get("achieved_flops_per_s"), "FLOP/s"), "-"),
            (
                "MFU",
                f"{m['mfu']:.1%}" if isinstance(m.get("mfu"), (int, float)) else "-",
                f"{p['mfu']:.1%}" if isinstance(p.get("mfu"), (int, float)) else "-",
            ),
        ]
        if m.get("compile_time_s") is not None:
            rows.append(("compile time (excluded)", _fmt_s(m.get("compile_time_s")), "-"))
    rows += [
        ("peak memory", _fmt_bytes(m.get("peak_memory_bytes")), _fmt_bytes(p.get("peak_memory_bytes"))),
        ("energy", _energy(m), "-"),
        (
            "$ per million tokens",
            f"{m['usd_per_million_tokens']:.4g}"
            if isinstance(m.get("usd_per_million_tokens"), (int, float))
            else "-",
            "-",
        ),
        ("CO2", f"{m['co2_kg'] * 1000:.3g} g" if isinstance(m.get("co2_kg"), (int, float)) else "-", "-"),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(f"status: {record.status}" + (f" ({record.error})" if record.error else ""))
    notes = [
        f"MFU peak: {m.get('mfu_peak_source')}" if m.get("mfu_peak_source") else None,
        f"energy: {m.get('energy_detail')}" if m.get("energy_detail") else None,
        f"cost: {m.get('cost_source')}" if m.get("cost_source") else None,
        f"CO2: {m.get('co2_source')}" if m.get("co2_source") else None,
        f"run {record.run_id}" + (f" in {ledger_location}" if ledger_location else ""),
    ]
    for note in notes:
        if note:
            console.print(f"  {note}", highlight=False)


def _render_compare(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="strategies compared (same model, data and machine)")
    for col, justify in (
        ("strategy", "left"),
        ("time/step", "right"),
        ("tokens/s", "right"),
        ("peak memory", "right"),
        ("energy", "right"),
        ("$/M tokens", "right"),
        ("speedup", "right"),
        ("verdict", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        m = row["metrics"]
        v = row["verdict"]
        usd = m.get("usd_per_million_tokens")
        table.add_row(
            row["strategy"],
            _fmt_s(m.get("step_time_s")),
            _fmt_si(m.get("tokens_per_s"), ""),
            _fmt_bytes(m.get("peak_memory_bytes")),
            _energy(m),
            f"{usd:.3g}" if isinstance(usd, (int, float)) else "-",
            f"{v['speedup']:.2f}×" if isinstance(v.get("speedup"), (int, float)) else "-",
            f"{v['label']}: {v['reason']}" if row["strategy"] != "baseline" else "reference",
        )
    Console(width=max(160, Console().width)).print(table)


def register(app: typer.Typer) -> None:
    """Add ``mlcost measure`` (train, serve) to the app."""
    measure = typer.Typer(
        name="measure",
        help="Train or serve a real model on this machine, measure time, FLOPs, memory, energy, $ and CO2.",
        no_args_is_help=True,
        rich_markup_mode=None,
    )

    @measure.command("train")
    def train(
        model: str = typer.Option(
            ..., "--model", "-m", help="Model preset (mlcost models) or a config.json path."
        ),
        micro_batch: int = options.positive_int(
            4, "--micro-batch", maximum=1_000_000, help="Sequences per forward/backward on one device."
        ),
        global_batch: int | None = options.positive_int(
            None,
            "--global-batch",
            maximum=1_000_000,
            help="Sequences per optimizer step (all devices); default micro-batch × devices.",
        ),
        seq_len: int = options.positive_int(128, "--seq-len", maximum=1_000_000, help="Tokens per sequence."),
        precision: str = options.choice(
            "fp32",
            "--precision",
            choices=("fp32", "tf32", "bf16", "fp16"),
            help="fp32, tf32, bf16 or fp16 (a strategy lever overrides it).",
        ),
        recompute: str = options.choice(
            "none",
            "--recompute",
            choices=("none", "selective", "full"),
            help="none, selective or full (turns checkpointing on).",
        ),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda or local (CUDA if present, else CPU)."),
        flash_attention: bool = typer.Option(
            True,
            "--flash-attention/--no-flash-attention",
            help="Fused attention (torch SDPA) or eager attention.",
        ),
        layers: int | None = options.positive_int(
            None, "--layers", maximum=10_000, help="Override the number of layers (shrink a preset)."
        ),
        d_model: int | None = options.positive_int(
            None, "--d-model", maximum=1_000_000, help="Override the hidden size (keeps MLP ratio)."
        ),
        heads: int | None = options.positive_int(
            None, "--heads", maximum=10_000, help="Override the attention heads."
        ),
        vocab: int | None = options.positive_int(
            None, "--vocab", maximum=100_000_000, help="Override the vocabulary size."
        ),
        steps: int = options.positive_int(
            10, "--steps", maximum=10_000_000, help="Measured optimizer steps."
        ),
        warmup: int = options.nonneg_int(
            2, "--warmup", maximum=10_000_000, help="Warm-up steps, excluded from timings."
        ),
        strategy: str = typer.Option(
            "baseline", "--strategy", "-s", help="Levers joined with '+', e.g. bf16+compile."
        ),
        compare: str | None = typer.Option(
            None,
            "--compare",
            help="Comma-separated strategies to measure side by side, e.g. baseline,compile,bf16.",
        ),
        data: str | None = typer.Option(
            None, "--data", help="A text file (byte-level tokens); default synthetic tokens."
        ),
        ledger: str | None = typer.Option(
            None, "--ledger", help="Ledger URL or SQLite path (default: user data dir)."
        ),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Replay recorded meter readings; runs no model."
        ),
        price: float | None = options.money(
            None, "--price-usd-per-h", help="Price of one device-hour in USD."
        ),
        carbon: float | None = options.nonneg_float(
            None, "--carbon-kg-per-kwh", maximum=5.0, help="Grid carbon intensity, kg CO2e/kWh."
        ),
        pue: float | None = options.pue(None, "--pue", help="Facility PUE (default 1.0 locally)."),
        seed: int = options.nonneg_int(
            0, "--seed", maximum=2**32 - 1, help="Seed of weights and synthetic data."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object (docs/measure.md)."),
    ) -> None:
        """Train a model for a few steps under a strategy and record the measured cost."""
        from mlcost.measure.distributed import env_world

        env_world()  # WORLD_SIZE/RANK/LOCAL_WORLD_SIZE checked before torch starts
        from mlcost.measure.runner import TrainShape, run_summary, run_training
        from mlcost.measure.strategies import judge, parse_strategy

        spec = build_spec(model, layers=layers, d_model=d_model, heads=heads, vocab=vocab, seq_len=seq_len)
        shape = TrainShape(
            micro_batch=micro_batch,
            global_batch=global_batch,
            seq_len=seq_len,
            precision=precision,
            recompute=recompute,
        )
        strategies = (
            [parse_strategy(s.strip()).name for s in compare.split(",") if s.strip()] if compare else []
        )
        if compare and "baseline" not in strategies:
            strategies.insert(0, "baseline")
        if not strategies:
            strategies = [parse_strategy(strategy).name]
        led = _open_ledger(ledger) if _is_main_rank() else None
        main = _is_main_rank()
        records = []
        for name in strategies:
            with _Bar(not as_json and main, f"{spec.name} [{name}]") as bar:
                record = run_training(
                    spec,
                    shape,
                    strategy=name,
                    steps=steps,
                    warmup=warmup,
                    device=device,
                    ledger=led,
                    dry_run=dry_run,
                    data=data,
                    seed=seed,
                    attn_implementation="sdpa" if flash_attention else "eager",
                    price_usd_per_device_h=price,
                    carbon_kg_per_kwh=carbon,
                    pue=pue,
                    progress=bar,
                )
            records.append(record)
            if record.status == "interrupted":
                break
        if not main:
            if records[-1].status != "completed":
                raise RunNotCompletedError(records[-1])
            return
        location = getattr(led, "location", None) if led is not None else None
        if compare:
            base = records[0]
            rows = []
            for rec in records:
                v = judge(rec.strategy, rec.metrics, base.metrics, status=rec.status, device=rec.device)
                rows.append(
                    {"strategy": rec.strategy, "metrics": rec.metrics, "verdict": v.to_dict(), "record": rec}
                )
            if as_json:
                out = {
                    "runs": [{**run_summary(r["record"]), "verdict": r["verdict"]} for r in rows],
                    "baseline": base.run_id,
                    "ledger": location,
                }
                typer.echo(json.dumps(out))
            else:
                _render_compare(rows)
        elif as_json:
            typer.echo(json.dumps({**run_summary(records[0]), "ledger": location}))
        else:
            _render_run(records[0], location)
        unfinished = next((r for r in records if r.status != "completed"), None)
        if unfinished is not None:
            raise RunNotCompletedError(unfinished)

    @measure.command("serve")
    def serve(
        model: str = typer.Option(..., "--model", "-m", help="Decoder preset or a config.json path."),
        prompt_len: int = options.positive_int(
            64, "--prompt-len", maximum=1_000_000, help="Prompt tokens per request."
        ),
        output_len: int = options.positive_int(
            32, "--output-len", maximum=1_000_000, help="Generated tokens per request."
        ),
        batch: int = options.positive_int(
            1, "--batch", maximum=1_000_000, help="Sequences decoded together."
        ),
        requests: int = options.positive_int(5, "--requests", maximum=10_000_000, help="Measured requests."),
        warmup: int = options.nonneg_int(
            1, "--warmup", maximum=10_000_000, help="Warm-up requests, excluded."
        ),
        precision: str = options.choice(
            "fp32",
            "--precision",
            choices=("fp32", "bf16", "fp16"),
            help="fp32, bf16 or fp16 weights and compute.",
        ),
        device: str = typer.Option("cpu", "--device", help="cpu, cuda or local."),
        flash_attention: bool = typer.Option(True, "--flash-attention/--no-flash-attention"),
        layers: int | None = options.positive_int(None, "--layers", maximum=10_000),
        d_model: int | None = options.positive_int(None, "--d-model", maximum=1_000_000),
        heads: int | None = options.positive_int(None, "--heads", maximum=10_000),
        vocab: int | None = options.positive_int(None, "--vocab", maximum=100_000_000),
        ledger: str | None = typer.Option(None, "--ledger", help="Ledger URL or SQLite path."),
        price: float | None = options.money(None, "--price-usd-per-h"),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Serve a model (prefill + decode with a KV cache): time to first token, time per token, tokens/s."""
        from mlcost.measure.distributed import env_world

        env_world()
        from mlcost.measure.runner import ServeShape, run_serving, run_summary

        spec = build_spec(
            model, layers=layers, d_model=d_model, heads=heads, vocab=vocab, seq_len=prompt_len + output_len
        )
        led = _open_ledger(ledger)
        with _Bar(not as_json, f"{spec.name} serve") as bar:
            record = run_serving(
                spec,
                ServeShape(prompt_len=prompt_len, output_len=output_len, batch=batch, precision=precision),
                requests=requests,
                warmup=warmup,
                device=device,
                ledger=led,
                attn_implementation="sdpa" if flash_attention else "eager",
                price_usd_per_device_h=price,
                progress=bar,
            )
        location = getattr(led, "location", None)
        if as_json:
            typer.echo(json.dumps({**run_summary(record), "ledger": location}))
        else:
            _render_run(record, location)
        if record.status != "completed":
            raise RunNotCompletedError(record)

    app.add_typer(measure, name="measure")


def _open_ledger(url: str | None) -> Any:
    from mlcost.measure.ledger import Ledger

    return Ledger(url, persistent=True)  # an in-memory SQLite ledger would lose the run at exit
