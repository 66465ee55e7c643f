"""`mlcost runs`: list, show, compare and delete measured runs in the ledger."""

from __future__ import annotations

from typing import Any

import typer

from mlcost.cli import options
from mlcost.cli._output import emit, explain_option, format_option
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


def _ledger(url: str | None, *, read_only: bool = False) -> Any:
    """The ledger; ``read_only`` for listing and showing (never creates a file or schema)."""
    from mlcost.measure.ledger import Ledger

    return Ledger(url, read_only=read_only)


def _record_json(ledger: Any, record: Any) -> dict[str, Any]:
    return {**record.to_dict(), "display_status": ledger.display_status(record)}


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


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
        fmt: str = format_option(),
        explain: bool = explain_option(),
    ) -> None:
        """List recent runs (most recent first). '~' marks estimated energy; dry runs are hidden unless --all."""
        ctx.obj = {"ledger": ledger_url}
        if ctx.invoked_subcommand is not None:
            return
        ledger = _ledger(ledger_url, read_only=True)
        records = ledger.list_runs(
            limit=limit, status=status, model=model, kind=kind, include_dry_run=include_dry_run
        )
        runs = [_record_json(ledger, r) for r in records]
        ledger.close()
        from mlcost.report.runs import list_view

        out = {"ledger": ledger.url, "count": len(runs), "runs": runs}
        emit(
            {**out, "ledger": str(ledger.location)},
            list_view,
            fmt=fmt,
            as_json=as_json,
            explain=explain,
            json_data=out,
        )

    def _url(ctx: typer.Context, given: str | None) -> str | None:
        return given or (ctx.obj or {}).get("ledger")

    @runs_app.command("show")
    def runs_show(
        ctx: typer.Context,
        run_id: str = typer.Argument(..., help="Run id or a unique prefix."),
        ledger_url: str | None = typer.Option(None, "--ledger", help=LEDGER_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
        fmt: str = format_option(),
        explain: bool = explain_option(),
    ) -> None:
        """Show one run in full: metrics (with predictions), config, provenance."""
        ledger = _ledger(_url(ctx, ledger_url), read_only=True)
        record = ledger.get(run_id)
        out = {"ledger": ledger.url, "run": _record_json(ledger, record)}
        ledger.close()
        from mlcost.report.runs import show_view

        emit(out, show_view, fmt=fmt, as_json=as_json, explain=explain)

    @runs_app.command("compare")
    def runs_compare(
        ctx: typer.Context,
        run_ids: list[str] = typer.Argument(
            ..., help="Two or more run ids (prefixes); ratios are vs the first."
        ),
        ledger_url: str | None = typer.Option(None, "--ledger", help=LEDGER_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
        fmt: str = format_option(),
    ) -> None:
        """Compare runs side by side, with each metric's ratio to the first run."""
        from mlcost.errors import SpecError

        if len(run_ids) < 2:
            raise SpecError("compare needs at least two runs", hint="mlcost runs compare ID ID [ID ...]")
        ledger = _ledger(_url(ctx, ledger_url), read_only=True)
        records = [ledger.get(r) for r in run_ids]
        data = compare_data(records)
        out = {"ledger": ledger.url, "runs": [r.run_id for r in records], "metrics": data}
        recs = [_record_json(ledger, r) for r in records]
        ledger.close()
        from mlcost.report.runs import compare_view

        emit({**out, "records": recs}, compare_view, fmt=fmt, as_json=as_json, json_data=out)

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
        ledger.close()
        if as_json:
            from mlcost.report.console import print_json

            print_json({"deleted": full})
        else:
            typer.echo(f"deleted run {full}")

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
            from mlcost.report.console import print_json

            print_json({"marked": marked})
        else:
            typer.echo(
                f"marked {len(marked)} run(s) interrupted"
                + (": " + ", ".join(m[:8] for m in marked) if marked else "")
            )
        ledger.close()

    app.add_typer(runs_app, name="runs")
