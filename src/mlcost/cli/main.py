"""The ``mlcost`` entry point: builds the typer app from the command modules and turns user errors
into a one-line message with exit code 2 (never a traceback)."""

from __future__ import annotations

import importlib
import sys

import typer

from mlcost import __version__
from mlcost.errors import MlcostError

# Top-level command name -> the module that registers it (register(app: typer.Typer)), in --help order.
# Only the module of the command being run is imported, so `mlcost plan ...` never pays for torch-free but
# heavy modules of other commands; a bare `mlcost` or `mlcost --help` imports them all to list them.
COMMANDS: dict[str, str] = {
    "estimate": "mlcost.cli.estimate",
    "plan": "mlcost.cli.plan",
    "allocate": "mlcost.cli.allocate",
    "tco": "mlcost.cli.tco",
    "measure": "mlcost.cli.measure",
    "runs": "mlcost.cli.runs",
    "calibrate": "mlcost.cli.calibrate",
    "devices": "mlcost.cli.catalog",
    "models": "mlcost.cli.catalog",
    "catalog": "mlcost.cli.catalog_import",
    "export": "mlcost.cli.export",
    "env": "mlcost.cli.env",
    "report": "mlcost.cli.report",
    "diff": "mlcost.cli.diff",
    "data": "mlcost.cli.data",
    "compress": "mlcost.cli.compress",
}
COMMAND_MODULES = tuple(dict.fromkeys(COMMANDS.values()))


def _modules_for(argv: list[str] | None) -> tuple[str, ...]:
    """The command modules needed for ``argv`` (all when None): just one when the first word is a command."""
    if argv is None:
        return COMMAND_MODULES
    words = [a for a in argv if not a.startswith("-")]
    if words and words[0] in COMMANDS:
        return (COMMANDS[words[0]],)
    return COMMAND_MODULES


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"mlcost {__version__}")
        raise typer.Exit()


def build_app(argv: list[str] | None = None) -> typer.Typer:
    """The typer app with the commands ``argv`` needs registered (every command when ``argv`` is None)."""
    app = typer.Typer(
        name="mlcost",
        help="Predict, plan, measure and cut the cost of training and serving neural models.",
        no_args_is_help=True,
        add_completion=True,
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

    for name in _modules_for(argv):
        importlib.import_module(name).register(app)
    return app


def err(message: str) -> None:
    """Print a user-facing error line on stderr."""
    typer.echo(f"mlcost: error: {message}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    app = build_app(argv)
    try:
        # With standalone_mode=False click returns a command's typer.Exit(code) instead of exiting.
        result = app(args=argv, standalone_mode=False, prog_name="mlcost")
        if isinstance(result, int) and not isinstance(result, bool):
            return result
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
    except BrokenPipeError:  # `mlcost ... | head -1`: the reader left; end quietly
        from mlcost.report.console import silence_stdout

        silence_stdout()
        return 0
    except Exception as exc:
        # Click's usage errors (typer >= 0.29 vendors click as typer._click, so match by shape, not class).
        # One line, like every other user error: the message and where to read the usage.
        fmt, code = getattr(exc, "format_message", None), getattr(exc, "exit_code", None)
        if callable(fmt) and isinstance(code, int):
            ctx = getattr(exc, "ctx", None)
            where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            err(" ".join(str(fmt()).split()) + where)
            return code
        raise
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
