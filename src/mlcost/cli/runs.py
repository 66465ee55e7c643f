"""`mlcost runs`: list, show, compare and delete measured runs in the ledger."""

from __future__ import annotations

import json
from typing import Any

import typer

from mlcost.cli import options
from mlcost.measure.record import RUN_KINDS, RUN_STATUSES

LEDGER_HELP = "Ledger location: a SQLAlchemy URL or a path (default: $MLCOST_LEDGER or the user data dir)."

#: Metrics compared by `mlcost runs compare`, in order, with whether lower is better.
COMPARE_METRICS: tuple[tuple[str, bool], ...] = (
    ("step_time_s", True),
    ("step_time_p90_s", True),
    ("tokens_per_s", False),
    ("tokens_per_s_per_device", False),
    ("achieved_flops_per_s", False),
    ("mfu", False),
    ("peak_memory_bytes", True),
    ("energy_j", True),
    ("cost_usd", True),
    ("co2_kg", True),
    ("loss_last", True),
    ("compile_time_s", True),
    ("steps_done", False),
)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def fmt_metric(name: str, value: Any) -> str:
    """Human form of one metric value, by the unit in its name."""
    v = _num(value)
    if v is None:
        return "-" if value is None else str(value)
    if name.endswith("_bytes"):
        return f"{v / 2**30:.2f} GiB" if v >= 2**30 else f"{v / 2**20:.1f} MiB"
    if name.endswith("_s") and not name.endswith("_per_s"):
        return f"{v * 1e3:.1f} ms" if v < 1 else f"{v:.2f} s"
    if name.endswith("flops_per_s"):
        return f"{v / 1e9:.2f} GFLOP/s" if v < 1e12 else f"{v / 1e12:.2f} TFLOP/s"
    if name == "mfu":
        return f"{v * 100:.1f}%"
    if name.endswith("_usd"):
        return f"${v:.4g}"
    if name.endswith("_j"):
        return f"{v:.1f} J" if v < 3.6e5 else f"{v / 3.6e6:.3f} kWh"
    return f"{v:.4g}"


def _energy(metrics: dict[str, Any]) -> str:
    if _num(metrics.get("energy_j")) is None:
        return "-"
    text = fmt_metric("energy_j", metrics["energy_j"])
    return f"~{text}" if metrics.get("energy_source") not in ("nvml", "rapl") else text


def _ledger(url: str | None, *, read_only: bool = False) -> Any:
    """The ledger; ``read_only`` for listing and showing (never creates a file or schema)."""
    from mlcost.measure.ledger import Ledger

    return Ledger(url, read_only=read_only)


def _record_json(ledger: Any, record: Any) -> dict[str, Any]:
    return {**record.to_dict(), "display_status": ledger.display_status(record)}


def _console() -> Any:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # pipes and tests: do not squeeze the table into 80 columns
        console = Console(width=200)
    return console


def render_runs(ledger: Any, records: list[Any]) -> None:
    from rich.table import Table

    console = _console()
    table = Table(title=f"runs in {ledger.location}", title_justify="left")
    for col in ("id", "started", "model", "kind", "strategy", "device", "ws", "status"):
        table.add_column(col)
    for col in ("step", "tokens/s", "MFU", "peak mem", "energy", "$"):
        table.add_column(col, justify="right")
    for r in records:
        m = r.metrics
        table.add_row(
            r.run_id[:8],
            r.started_at[5:16].replace("T", " "),
            r.model,
            r.kind,
            r.strategy or "-",
            r.device,
            str(r.world_size),
            ledger.display_status(r),
            fmt_metric("step_time_s", m.get("step_time_s")),
            fmt_metric("tokens_per_s", m.get("tokens_per_s")),
            fmt_metric("mfu", m.get("mfu")),
            fmt_metric("peak_memory_bytes", m.get("peak_memory_bytes")),
            _energy(m),
            fmt_metric("cost_usd", m.get("cost_usd")),
        )
    console.print(table)
    if any(
        r.metrics.get("energy_j") is not None and r.metrics.get("energy_source") not in ("nvml", "rapl")
        for r in records
    ):
        console.print("~ energy estimated (power × time), not measured")
    if any(ledger.display_status(r) == "interrupted?" for r in records):
        console.print(
            "interrupted?: still 'running' but its process is gone (mlcost runs mark-stale records it)"
        )


def render_show(ledger: Any, record: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(show_header=False, box=None, title=f"run {record.run_id}", title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key in (
        "kind",
        "model",
        "strategy",
        "device",
        "world_size",
        "started_at",
        "finished_at",
        "host",
        "pid",
    ):
        table.add_row(key, str(getattr(record, key)))
    table.add_row("status", ledger.display_status(record))
    if record.error:
        table.add_row("error", record.error)
    for key, value in record.metrics.items():
        shown = fmt_metric(key, value)
        pred = record.predicted.get(key)
        if _num(pred) is not None:
            shown += f"   (predicted {fmt_metric(key, pred)})"
        table.add_row(f"metrics.{key}", shown)
    for key, value in record.config.items():
        table.add_row(f"config.{key}", json.dumps(value))
    prov = record.provenance
    if prov:
        cpu = prov.get("cpu") or {}
        git = prov.get("git") or {}
        table.add_row(
            "provenance", f"{prov.get('hostname')}, {cpu.get('model')}, python {prov.get('python')}"
        )
        table.add_row("versions", ", ".join(f"{k} {v}" for k, v in (prov.get("versions") or {}).items() if v))
        if git:
            table.add_row("git", f"{git.get('commit', '')[:12]}{' (dirty)' if git.get('dirty') else ''}")
    console.print(table)


def compare_data(records: list[Any]) -> dict[str, dict[str, Any]]:
    """For each metric present in any run: values per run and ratio to the first run (None if undefined)."""
    names = [n for n, _ in COMPARE_METRICS]
    names += sorted(
        {k for r in records for k in r.metrics if k not in names and _num(r.metrics[k]) is not None}
    )
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        values = [r.metrics.get(name) for r in records]
        if all(_num(v) is None for v in values):
            continue
        base = _num(values[0])
        ratios = [(_num(v) / base) if base and _num(v) is not None else None for v in values]  # type: ignore[operator]
        out[name] = {"values": values, "ratios": ratios}
    return out


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    runs_app = typer.Typer(
        name="runs",
        help="List, show, compare and delete measured runs in the ledger.",
        invoke_without_command=True,
        no_args_is_help=False,
    )

    @runs_app.callback()
    def runs_list(
        ctx: typer.Context,
        ledger_url: str | None = typer.Option(None, "--ledger", help=LEDGER_HELP),
        limit: int = options.positive_int(50, "--limit", "-n", help="Most recent runs to list."),
        status: str | None = options.choice(
            None, "--status", choices=RUN_STATUSES, help="Only runs with this status."
        ),
        model: str | None = typer.Option(None, "--model", help="Only runs whose model name contains this."),
        kind: str | None = options.choice(
            None, "--kind", choices=RUN_KINDS, help="Only train or serve runs."
        ),
        include_dry_run: bool = typer.Option(
            False,
            "--all",
            "--include-dry-run",
            help="Also list dry runs (replayed readings, hidden by default).",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """List recent runs (most recent first). '~' marks estimated energy; dry runs are hidden unless --all."""
        ctx.obj = {"ledger": ledger_url}
        if ctx.invoked_subcommand is not None:
            return
        ledger = _ledger(ledger_url, read_only=True)
        records = ledger.list_runs(
            limit=limit, status=status, model=model, kind=kind, include_dry_run=include_dry_run
        )
        if as_json:
            runs = [_record_json(ledger, r) for r in records]
            typer.echo(json.dumps({"ledger": ledger.url, "count": len(runs), "runs": runs}))
        elif not records:
            typer.echo(f"no runs in {ledger.location}")
        else:
            render_runs(ledger, records)
        ledger.close()

    def _url(ctx: typer.Context, given: str | None) -> str | None:
        return given or (ctx.obj or {}).get("ledger")

    @runs_app.command("show")
    def runs_show(
        ctx: typer.Context,
        run_id: str = typer.Argument(..., help="Run id or a unique prefix."),
        ledger_url: str | None = typer.Option(None, "--ledger", help=LEDGER_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Show one run in full: metrics (with predictions), config, provenance."""
        ledger = _ledger(_url(ctx, ledger_url), read_only=True)
        record = ledger.get(run_id)
        if as_json:
            typer.echo(json.dumps({"ledger": ledger.url, "run": _record_json(ledger, record)}))
        else:
            render_show(ledger, record)
        ledger.close()

    @runs_app.command("compare")
    def runs_compare(
        ctx: typer.Context,
        run_ids: list[str] = typer.Argument(
            ..., help="Two or more run ids (prefixes); ratios are vs the first."
        ),
        ledger_url: str | None = typer.Option(None, "--ledger", help=LEDGER_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Compare runs side by side, with each metric's ratio to the first run."""
        from mlcost.errors import SpecError

        if len(run_ids) < 2:
            raise SpecError("compare needs at least two runs", hint="mlcost runs compare ID ID [ID ...]")
        ledger = _ledger(_url(ctx, ledger_url), read_only=True)
        records = [ledger.get(r) for r in run_ids]
        data = compare_data(records)
        if as_json:
            typer.echo(
                json.dumps({"ledger": ledger.url, "runs": [r.run_id for r in records], "metrics": data})
            )
            ledger.close()
            return
        from rich.table import Table

        table = Table(title="ratios vs the first run", title_justify="left")
        table.add_column("")
        for r in records:
            table.add_column(f"{r.run_id[:8]}\n{r.strategy or r.model}", justify="right")
        for key, label in (("model", "model"), ("strategy", "strategy"), ("device", "device")):
            table.add_row(label, *[str(getattr(r, key)) for r in records])
        table.add_row("status", *[ledger.display_status(r) for r in records])
        for name, row in data.items():
            cells = []
            for i, (v, ratio) in enumerate(zip(row["values"], row["ratios"], strict=True)):
                text = _energy(records[i].metrics) if name == "energy_j" else fmt_metric(name, v)
                if i > 0 and ratio is not None:
                    text += f" ({ratio:.2f}×)"
                cells.append(text)
            table.add_row(name, *cells)
        _console().print(table)
        ledger.close()

    @runs_app.command("delete")
    def runs_delete(
        ctx: typer.Context,
        run_id: str = typer.Argument(..., help="Run id or a unique prefix."),
        ledger_url: str | None = typer.Option(None, "--ledger", help=LEDGER_HELP),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Delete one run from the ledger (asks first; --yes skips the question)."""
        import sys

        from mlcost.errors import SpecError

        ledger = _ledger(_url(ctx, ledger_url), read_only=True)
        record = ledger.get(run_id)  # an unknown id fails before any question
        if not yes:
            if not sys.stdin.isatty():
                raise SpecError(
                    f"runs delete {record.run_id[:12]} needs confirmation and stdin is not a terminal",
                    hint="pass --yes to delete without asking",
                )
            what = f"{record.run_id[:12]} ({record.kind} {record.model} [{record.strategy}], {record.status})"
            typer.confirm(f"delete run {what}?", abort=True, err=True)
        ledger.close()
        ledger = _ledger(_url(ctx, ledger_url))
        full = ledger.delete(record.run_id)
        typer.echo(json.dumps({"deleted": full}) if as_json else f"deleted run {full}")
        ledger.close()

    @runs_app.command("mark-stale")
    def runs_mark_stale(
        ctx: typer.Context,
        run_id: str | None = typer.Argument(None, help="Only this run (id or prefix)."),
        older_than: float | None = options.duration(
            None, "--older-than", help="Also mark runs whose last heartbeat is older than this (e.g. '2h')."
        ),
        ledger_url: str | None = typer.Option(None, "--ledger", help=LEDGER_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Mark 'running' runs whose process is gone (or silent for --older-than) as interrupted."""
        ledger = _ledger(_url(ctx, ledger_url))
        marked = ledger.mark_stale(run_id, older_than_s=older_than)
        if as_json:
            typer.echo(json.dumps({"marked": marked}))
        else:
            typer.echo(
                f"marked {len(marked)} run(s) interrupted"
                + (": " + ", ".join(m[:8] for m in marked) if marked else "")
            )
        ledger.close()

    app.add_typer(runs_app, name="runs")
