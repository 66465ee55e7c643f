"""The ``mlcost`` entry point: builds the typer app from the command modules and turns user errors
into a one-line message with exit code 2 (never a traceback)."""

from __future__ import annotations

import importlib
import sys

import typer

from mlcost import __version__
from mlcost.errors import MlcostError

# Command modules in the order they appear in --help. Each defines register(app: typer.Typer).
COMMAND_MODULES = (
    "mlcost.cli.estimate",
    "mlcost.cli.plan",
    "mlcost.cli.allocate",
    "mlcost.cli.tco",
    "mlcost.cli.measure",
    "mlcost.cli.runs",
    "mlcost.cli.calibrate",
    "mlcost.cli.catalog",
    "mlcost.cli.env",
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"mlcost {__version__}")
        raise typer.Exit()


def build_app() -> typer.Typer:
    app = typer.Typer(
        name="mlcost",
        help="Predict, plan, measure and cut the cost of training and serving neural models.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
        ),
    ) -> None:
        """mlcost: what will this cost, and what is the cheapest way to do it?"""

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)
    return app


def err(message: str) -> None:
    """Print a user-facing error line on stderr."""
    typer.echo(f"mlcost: error: {message}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    app = build_app()
    try:
        app(args=argv, standalone_mode=False, prog_name="mlcost")
    except MlcostError as exc:
        err(str(exc))
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        err("aborted")
        return 130
    except KeyboardInterrupt:
        err("interrupted")
        return 130
    except Exception as exc:  # click usage errors arrive as click.exceptions.UsageError
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return 2
        raise
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
