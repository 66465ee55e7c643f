"""``mlcost catalog import-skypilot DIR``: turn a SkyPilot catalog into mlcost price rows.

The conversion is :mod:`mlcost.catalog.skypilot`; this module parses options, writes the file and prints
what was kept and skipped."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import typer

catalog_app = typer.Typer(
    name="catalog",
    help="Maintain the price catalog: import a newer SkyPilot catalog.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, so a failure leaves nothing
    half-written."""
    from mlcost.errors import MlcostError

    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise MlcostError(
            f"--out {path}: folder {folder} does not exist", hint="create it or pick another path"
        )
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@catalog_app.command("import-skypilot")
def import_skypilot_command(
    directory: Path = typer.Argument(
        ...,
        help="A skypilot-catalog checkout (catalogs/vN/<cloud>/vms.csv) or a flat <provider>.csv snapshot.",
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Write the price table here (prices.csv columns) [stdout]."
    ),
    commit: str | None = typer.Option(
        None, "--commit", help="Source commit to record [git rev-parse HEAD of DIR, for a checkout]."
    ),
    date: str | None = typer.Option(None, "--date", help="Date recorded on every row, YYYY-MM-DD [today]."),
    as_json: bool = typer.Option(False, "--json", help="Print the import summary as JSON (docs/json.md)."),
) -> None:
    """Convert a SkyPilot catalog to per-device-hour prices (on-demand and spot, every region), mapping
    SkyPilot accelerator names to mlcost device ids; unmapped accelerators are skipped and counted.

    Load the result with ``--catalog``-style override or replace the package's prices_skypilot.csv."""
    from mlcost.catalog.skypilot import import_skypilot, to_csv

    report = import_skypilot(directory, commit=commit, date=date)
    text = to_csv(report)
    if out is not None:
        _write_atomic(out, text)
    else:
        sys.stdout.write(text)
    summary: dict[str, Any] = report.to_dict()
    summary["out"] = str(out) if out is not None else None
    if as_json:
        typer.echo(json.dumps(summary, indent=2), err=out is None)
        return
    typer.echo(
        f"{summary['rows']} price rows from {summary['read']} source rows; "
        f"{summary['skipped_total']} skipped" + (f"; written to {out}" if out is not None else ""),
        err=True,
    )
    for reason, n in summary["skipped"].items():
        typer.echo(f"  skipped {n:5d}: {reason}", err=True)
    for path, sha in summary["sources"].items():
        typer.echo(f"  source {path} @ {sha}", err=True)


def register(app: typer.Typer) -> None:
    """Add the ``catalog`` command group to the app."""
    app.add_typer(catalog_app, name="catalog")
