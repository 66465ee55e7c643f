"""`mlcost allocate FILE`: solve a resource-allocation LP/MILP and say why (duals, conflicts, relaxations).

This module only parses options and renders; the maths is in :mod:`mlcost.plan.allocate`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from mlcost.cli import options
from mlcost.plan.allocate import AllocationProblem, AllocationResult, solve_allocation


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    return str(round(v)) if abs(v - round(v)) < 1e-9 * max(1.0, abs(v)) else f"{v:.6g}"


def render(result: AllocationResult, problem: AllocationProblem, console: Console) -> None:
    """Print the result as rich tables (no computation here)."""
    if result.status == "infeasible":
        console.print(f"[bold red]{result.message}[/]")
        console.print("conflicting constraints: " + ", ".join(result.conflicting_constraints))
        if result.relaxations:
            table = Table(title="Smallest single change that makes it feasible")
            for col in ("constraint", "current", "required", "why"):
                table.add_column(col, overflow="fold", ratio=3 if col == "why" else None)
            for rx in result.relaxations:
                table.add_row(rx.constraint, _num(rx.current), _num(rx.required), rx.message)
            console.print(table)
        return
    assert result.allocation is not None
    if result.status == "time_limit":
        console.print(f"[bold yellow]{result.message}[/]")
    table = Table(title=f"Allocation ({result.objective_kind}: {result.message})")
    for col in ("resource", "units", "cost", "performance"):
        table.add_column(col, justify="left" if col == "resource" else "right")
    for r in problem.resources:
        x = result.allocation[r.name]
        table.add_row(r.name, _num(x), _num(x * r.unit_cost), _num(x * r.performance))
    table.add_section()
    table.add_row("total", _num(result.total_units), _num(result.total_cost), _num(result.total_performance))
    console.print(table)
    if result.binding_constraints:
        basis = {
            "lp": "LP dual values (HiGHS marginals)",
            "lp_with_integers_fixed": "MILP: re-solved step change; dual of the LP with integer units fixed",
            "none": "MILP, all integer: re-solved step change (no duals exist)",
        }[result.dual_basis or "none"]
        bt = Table(title=f"Binding constraints ({basis})")
        for col in ("constraint", "limit", "dual", "step", "meaning"):
            bt.add_column(col, overflow="fold")
        for b in result.binding_constraints:
            bt.add_row(b.constraint, _num(b.limit), _num(b.dual), _num(b.step_change), b.meaning)
        console.print(bt)
    else:
        console.print("no constraint binds")


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
) -> None:
    """Allocate resources at least cost (or for most performance) under limits, and say which limits bind.

    An infeasible problem is an answer, not an error: it exits 0 with status "infeasible", the conflicting
    constraints and the smallest change to each that would make it feasible. Bad input exits 2.
    """
    problem = AllocationProblem.from_file(file)
    result = solve_allocation(problem, time_limit_s=time_limit, progress=_progress())
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    render(result, problem, Console())


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("allocate")(allocate)
