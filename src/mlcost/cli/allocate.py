"""`mlcost allocate FILE`: solve a resource-allocation LP/MILP and say why (duals, conflicts, relaxations).

This module only parses options and renders; the maths is in :mod:`mlcost.plan.allocate`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from mlcost.cli import options
from mlcost.cli._output import emit, explain_option, format_option
from mlcost.plan.allocate import AllocationProblem, solve_allocation


def _progress() -> Callable[[str], None] | None:
    """Progress lines on stderr while solving, only when stderr is a terminal (never in pipes or tests)."""
    import sys

    if not sys.stderr.isatty():
        return None
    return lambda msg: typer.echo(f"mlcost allocate: {msg}", err=True)


def allocate(
    file: Path = typer.Argument(
        ..., help="Allocation problem as .toml, .yaml or .yml (see docs/allocate.md)."
    ),
    time_limit: float | None = options.duration(
        None, "--time-limit", help="Stop the solver after this long (e.g. 60s, 5m); reports the MIP gap."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (status, allocation, ...)."),
    fmt: str = format_option(),
    explain: bool = explain_option(),
) -> None:
    """Allocate resources at least cost (or for most performance) under limits, and say which limits bind.

    An infeasible problem is an answer, not an error: it exits 0 with status "infeasible", the conflicting
    constraints and the smallest change to each that would make it feasible. Bad input exits 2.
    """
    problem = AllocationProblem.from_file(file)
    result = solve_allocation(problem, time_limit_s=time_limit, progress=_progress())
    from mlcost.report.allocate import view

    out = result.to_dict()
    resources = [
        {"name": r.name, "unit_cost": r.unit_cost, "performance": r.performance} for r in problem.resources
    ]
    emit({**out, "resources": resources}, view, fmt=fmt, as_json=as_json, explain=explain, json_data=out)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("allocate")(allocate)
