"""`mlcost env`: what hardware, libraries, energy counters, ledger and catalog mlcost sees here."""

from __future__ import annotations

import typer

from mlcost.cli._output import emit, format_option


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command("env")
    def env_command(
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
        torch: bool = typer.Option(
            False, "--torch", help="Import torch to check CUDA even without a visible NVIDIA driver."
        ),
        fmt: str = format_option(),
    ) -> None:
        """Show the CPU (and what its ISA means for mlcost), GPUs, libraries, energy counters, ledger and
        catalog that mlcost sees on this machine."""
        from mlcost.env import collect_env

        env = collect_env(import_torch=True if torch else None)
        from mlcost.report.env import view

        emit(env, view, fmt=fmt, as_json=as_json)
