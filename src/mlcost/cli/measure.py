"""`mlcost measure train|serve`: train or serve a real PyTorch model under a strategy on this machine,
measure it and record the run in the ledger. ``--compare`` measures several strategies side by side and
says which pay on this hardware. ``--dry-run`` replays recorded readings (no torch needed).

Everything heavy (torch, transformers) is imported inside the commands, so ``mlcost --help`` stays light.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import typer

from mlcost.cli import options
from mlcost.cli._output import check_format, emit, explain_option, format_option
from mlcost.errors import MlcostError, SpecError

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


def build_spec(
    model: str, *, layers: int | None, d_model: int | None, heads: int | None, vocab: int | None, seq_len: int
) -> Any:
    """The ModelSpec to measure: a preset or config.json, shrunk by the overrides."""
    from mlcost.catalog import resolve_model
    from mlcost.context import default_catalog
    from mlcost.measure.torch_models import override_spec
    from mlcost.measure.validate import validate_overrides

    validate_overrides(layers=layers, d_model=d_model, heads=heads, vocab=vocab)
    spec = resolve_model(model, default_catalog())
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


#: Shape overrides shared by `measure train` and `measure serve` (one definition: same flags, same limits).
_LAYERS = options.positive_int(
    None, "--layers", maximum=10_000, help="Override the number of layers (shrink a preset)."
)
_D_MODEL = options.positive_int(
    None, "--d-model", maximum=1_000_000, help="Override the hidden size (keeps MLP ratio)."
)
_HEADS = options.positive_int(None, "--heads", maximum=10_000, help="Override the attention heads.")
_VOCAB = options.positive_int(None, "--vocab", maximum=100_000_000, help="Override the vocabulary size.")


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
        layers: int | None = _LAYERS,
        d_model: int | None = _D_MODEL,
        heads: int | None = _HEADS,
        vocab: int | None = _VOCAB,
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
        repeats: int = typer.Option(
            1, "--repeats", help="With --compare: run the strategies this many times, interleaved."
        ),
        data: str | None = typer.Option(
            None, "--data", help="A text file (byte-level tokens); default synthetic tokens."
        ),
        ledger: str | None = typer.Option(
            None, "--ledger", help="Ledger URL or SQLite path (default: user data dir)."
        ),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Replay the predicted step time through the loop; runs no model."
        ),
        price: float | None = options.money(
            None, "--price-usd-per-h", help="Price of one device-hour in USD."
        ),
        carbon: float | None = options.nonneg_float(
            None, "--carbon-kg-per-kwh", maximum=5.0, help="Grid carbon intensity, kg CO2e/kWh."
        ),
        pue: float | None = options.pue(None, "--pue", help="Facility PUE (default: the catalog's)."),
        seed: int = options.nonneg_int(
            0, "--seed", maximum=2**32 - 1, help="Seed of weights and synthetic data."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object (docs/measure.md)."),
        fmt: str = format_option(),
        explain: bool = explain_option(),
    ) -> None:
        """Train a model for a few steps under a strategy and record the measured cost."""
        from mlcost.measure.distributed import env_world

        env_world()  # WORLD_SIZE/RANK/LOCAL_WORLD_SIZE checked before torch starts
        from mlcost.measure.options import RUNNER_ATTN_IMPLEMENTATION, CostOptions, TrainOptions, TrainShape
        from mlcost.measure.validate import positive_int, validate_train_options
        from mlcost.report.runs import measured_view, strategies_view

        check_format(fmt, as_json)

        opts = TrainOptions(
            shape=TrainShape(
                micro_batch=micro_batch,
                global_batch=global_batch,
                seq_len=seq_len,
                precision=precision,
                recompute=recompute,
            ),
            strategy=strategy,
            steps=steps,
            warmup=warmup,
            device=device,
            dry_run=dry_run,
            data=data,
            seed=seed,
            attn_implementation=RUNNER_ATTN_IMPLEMENTATION if flash_attention else "eager",
            cost=CostOptions(price_usd_per_device_h=price, pue=pue, carbon_kg_per_kwh=carbon),
        )
        # Everything is checked before torch is imported or a ledger row written.
        validate_train_options(opts)
        opts = dataclasses.replace(opts, facts=_run_facts())
        positive_int("--repeats", repeats)
        strategies = _strategies(strategy, compare, opts)
        spec = build_spec(model, layers=layers, d_model=d_model, heads=heads, vocab=vocab, seq_len=seq_len)
        main = _is_main_rank()
        led = _open_ledger(ledger) if main else None
        order = strategies * (repeats if compare else 1)
        records = _run_strategies(spec, opts, order, led, progress=not as_json and main)
        if not main:
            if records[-1].status != "completed":
                raise RunNotCompletedError(records[-1])
            return
        location = getattr(led, "location", None) if led is not None else None
        if compare:
            out = compare_output(records, strategies, location)
            emit(out, strategies_view, fmt=fmt, as_json=as_json, explain=explain)
        else:
            out = {**_summary(records[0]), "ledger": location}
            emit(
                {**records[0].metrics, **out},
                measured_view,
                fmt=fmt,
                as_json=as_json,
                explain=explain,
                json_data=out,
            )
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
        engine: str = options.choice(
            "static",
            "--engine",
            choices=("static", "hf"),
            help="static (one batch at a time) or hf (transformers' continuous batching under --rps).",
        ),
        rps: float | None = typer.Option(
            None, "--rps", help="Poisson arrival rate of the hf engine's load, requests/s."
        ),
        max_batch_tokens: int = options.positive_int(
            256, "--max-batch-tokens", maximum=10_000_000, help="hf engine: tokens per iteration."
        ),
        max_seqs: int = options.positive_int(
            16, "--max-seqs", maximum=1_000_000, help="hf engine: sequences per iteration."
        ),
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
        flash_attention: bool = typer.Option(
            True, "--flash-attention/--no-flash-attention", help="Fused attention (SDPA) or eager."
        ),
        layers: int | None = _LAYERS,
        d_model: int | None = _D_MODEL,
        heads: int | None = _HEADS,
        vocab: int | None = _VOCAB,
        ledger: str | None = typer.Option(None, "--ledger", help="Ledger URL or SQLite path."),
        price: float | None = options.money(
            None, "--price-usd-per-h", help="Price of one device-hour in USD."
        ),
        carbon: float | None = options.nonneg_float(
            None, "--carbon-kg-per-kwh", maximum=5.0, help="Grid carbon intensity, kg CO2e/kWh."
        ),
        pue: float | None = options.pue(None, "--pue", help="Facility PUE (default: the catalog's)."),
        seed: int = options.nonneg_int(0, "--seed", maximum=2**32 - 1, help="Seed of weights and prompts."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
        fmt: str = format_option(),
        explain: bool = explain_option(),
    ) -> None:
        """Serve a model (prefill + decode with a KV cache): time to first token, time per token, tokens/s.
        With --engine hf --rps R: transformers' continuous batching under Poisson arrivals at R requests/s
        (TTFT p50/p90, inter-token latency, throughput; the prediction comes from the serving simulator)."""
        from mlcost.measure.distributed import env_world

        env_world()  # WORLD_SIZE/RANK/LOCAL_WORLD_SIZE checked before torch starts
        from mlcost.measure.options import RUNNER_ATTN_IMPLEMENTATION, CostOptions, ServeOptions, ServeShape
        from mlcost.measure.validate import validate_serve_options
        from mlcost.report.runs import measured_view

        check_format(fmt, as_json)

        opts = ServeOptions(
            shape=ServeShape(prompt_len=prompt_len, output_len=output_len, batch=batch, precision=precision),
            requests=requests,
            warmup=warmup,
            engine=engine,
            rps=rps,
            max_batch_tokens=max_batch_tokens,
            max_seqs=max_seqs,
            device=device,
            seed=seed,
            attn_implementation=RUNNER_ATTN_IMPLEMENTATION if flash_attention else "eager",
            cost=CostOptions(price_usd_per_device_h=price, pue=pue, carbon_kg_per_kwh=carbon),
        )
        validate_serve_options(opts)
        opts = dataclasses.replace(opts, facts=_run_facts())
        spec = build_spec(
            model, layers=layers, d_model=d_model, heads=heads, vocab=vocab, seq_len=prompt_len + output_len
        )
        if spec.kind == "encoder":
            raise SpecError(f"--model {model}: serving needs a decoder model", hint="use a decoder preset")
        from mlcost.measure.serve import run_serving

        led = _open_ledger(ledger)
        with _Bar(not as_json, f"{spec.name} serve") as bar:
            record = run_serving(spec, opts, ledger=led, progress=bar)
        location = getattr(led, "location", None)
        out = {**_summary(record), "ledger": location}
        emit(
            {**record.metrics, **out}, measured_view, fmt=fmt, as_json=as_json, explain=explain, json_data=out
        )
        if record.status != "completed":
            raise RunNotCompletedError(record)

    app.add_typer(measure, name="measure")


def _run_facts() -> Any:
    """The facts a measured run is given, built once at the application edge: the default catalog
    (package data, this host's calibration, ``$MLCOST_CATALOG``) and this host's saved calibration."""
    from mlcost import context
    from mlcost.measure.options import RunFacts

    return RunFacts(catalog=context.default_catalog(), calibration=context.local_calibration())


def _open_ledger(url: str | None) -> Any:
    from mlcost.measure.ledger import Ledger

    return Ledger(url, persistent=True)  # an in-memory SQLite ledger would lose the run at exit


def _summary(record: Any) -> dict[str, Any]:
    from mlcost.measure.contract import run_summary

    return run_summary(record)


def _strategies(strategy: str, compare: str | None, opts: Any) -> list[str]:
    """The strategies to run, each parsed (and checked) before anything starts."""
    import dataclasses

    from mlcost.measure.strategies import parse_strategy
    from mlcost.measure.validate import validate_train_options

    if not compare:
        return [parse_strategy(strategy).name]
    names = [s.strip() for s in compare.split(",") if s.strip()]
    if not names:
        raise SpecError(f"--compare needs strategies separated by commas, got {compare!r}")
    parsed = [parse_strategy(n).name for n in names]
    for name in parsed:
        validate_train_options(dataclasses.replace(opts, strategy=name))
    if "baseline" not in parsed:
        parsed.insert(0, "baseline")
    return list(dict.fromkeys(parsed))


def _run_strategies(spec: Any, opts: Any, order: list[str], led: Any, *, progress: bool) -> list[Any]:
    import dataclasses

    from mlcost.measure.train import run_training

    records = []
    for name in order:
        with _Bar(progress, f"{spec.name} [{name}]") as bar:
            record = run_training(spec, dataclasses.replace(opts, strategy=name), ledger=led, progress=bar)
        records.append(record)
        if record.status == "interrupted":
            break
    return records


def compare_rows(records: list[Any], strategies: list[str]) -> list[dict[str, Any]]:
    """One row per strategy: its (pooled) metrics, the speed-up interval against the baseline and the
    verdict. Repeats of a strategy (``--repeats``) are pooled."""
    from mlcost.measure.compare import interval_of, pooled
    from mlcost.measure.strategies import judge

    by_name = {name: [r for r in records if r.strategy == name] for name in strategies}
    by_name = {k: v for k, v in by_name.items() if v}
    base = pooled(by_name["baseline"])
    rows = []
    for name, recs in by_name.items():
        metrics = pooled(recs)
        status = next((r.status for r in recs if r.status != "completed"), "completed")
        interval = interval_of(metrics, base) if name != "baseline" and status == "completed" else None
        v = judge(name, metrics, base, status=status, device=recs[0].device, interval=interval)
        rows.append(
            {
                "strategy": name,
                "metrics": metrics,
                "verdict": v.to_dict(),
                "interval": interval.to_dict() if interval is not None else None,
                "records": recs,
            }
        )
    return rows


def compare_output(records: list[Any], strategies: list[str], location: str | None) -> dict[str, Any]:
    """The ``--compare`` JSON object (docs/measure.md): one summary per strategy with its verdict and the
    95% interval of its speed-up against the baseline."""
    rows = compare_rows(records, strategies)
    return {
        "runs": [
            {
                **_summary(r["records"][0]),
                **{k: r["metrics"].get(k) for k in ("warnings", "stable") if k in r["metrics"]},
                "run_ids": [rec.run_id for rec in r["records"]],
                "verdict": r["verdict"],
                "speedup_interval": r["interval"],
            }
            for r in rows
        ],
        "baseline": rows[0]["records"][0].run_id,
        "ledger": location,
    }
