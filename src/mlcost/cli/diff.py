"""``mlcost diff A B``: what changed between two estimates, two plans or two ledger runs, and what it does
to time, $, kWh, CO2 and memory. ``--fail-above 10%`` exits 1 when cost rises more than that (for CI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from mlcost.cli._output import check_format, emit, format_option
from mlcost.errors import SpecError


def parse_rel(text: str) -> float:
    """'10%' or '10' → 0.10; '0.5%' → 0.005."""
    t = text.strip().removesuffix("%")
    try:
        value = float(t) / 100.0
    except ValueError:
        raise SpecError(
            f"--fail-above {text!r} is not a percentage", hint="write e.g. --fail-above 10%"
        ) from None
    if value < 0:
        raise SpecError(f"--fail-above must be >= 0, got {text!r}")
    return value


def _load(arg: str, ledger: str | None) -> dict[str, Any]:
    path = Path(arg)
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SpecError(
                f"{arg} is not JSON", hint="diff two outputs of mlcost estimate/plan --json"
            ) from None
    if path.suffix == ".json" or "/" in arg:
        raise SpecError(f"no file {arg}", hint="give two JSON files or two run ids")
    from mlcost.cli.report import open_existing_ledger

    led = open_existing_ledger(ledger)
    try:
        return led.get(arg).to_dict()  # type: ignore[no-any-return]
    finally:
        led.close()


def register(app: typer.Typer) -> None:
    """Add ``mlcost diff`` to the app."""

    @app.command("diff")
    def diff_command(
        a: str = typer.Argument(..., help="Before: a --json file of estimate/plan, or a run id."),
        b: str = typer.Argument(..., help="After: same kind as A."),
        fail_above: str | None = typer.Option(
            None, "--fail-above", help="Exit 1 when cost rises more than this, e.g. 10%."
        ),
        ledger: str | None = typer.Option(None, "--ledger", help="Ledger for run ids."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object (docs/json.md)."),
        fmt: str = format_option(),
    ) -> None:
        """Compare two results: changed inputs and the change in time, $, kWh, CO2e and memory."""
        from mlcost.report.diff import diff, view

        check_format(fmt, as_json)
        limit = parse_rel(fail_above) if fail_above is not None else None
        d = diff(_load(a, ledger), _load(b, ledger), a_name=a, b_name=b, fail_above_rel=limit)
        emit(d, view, fmt=fmt, as_json=as_json)
        if d["failed"]:
            raise typer.Exit(1)
