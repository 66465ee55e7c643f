"""The two output options every command takes and the one call that prints a result.

``--format table|json|md|csv`` (``--json`` stays as an alias of ``--format json``) and ``--explain`` (the
full assumptions and detail tables). Commands compute a result, then call :func:`emit` with the result's
``to_dict()`` and the renderer that turns that dict into a :class:`mlcost.report.view.View`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

FORMAT_HELP = "Output: table, json, md (Markdown) or csv."
EXPLAIN_HELP = "Show every assumption and the detail tables."


def format_option() -> Any:
    return typer.Option("table", "--format", help=FORMAT_HELP)


def explain_option() -> Any:
    return typer.Option(False, "--explain", help=EXPLAIN_HELP)


def check_format(fmt: str, as_json: bool = False) -> str:
    """The format to print in; a one-line error (exit 2) for an unknown one."""
    from mlcost.errors import SpecError
    from mlcost.report.view import FORMATS

    if as_json:
        return "json"
    if fmt not in FORMATS:
        raise SpecError(f"--format {fmt!r} is not a format", hint="use --format table, json, md or csv")
    return fmt


def emit(
    data: Any,
    render: Callable[[Any], Any],
    *,
    fmt: str = "table",
    as_json: bool = False,
    explain: bool = False,
    json_data: Any = None,
) -> None:
    """Print ``data``: as JSON (``json_data`` if given, else ``data``) or as the view ``render(data)``."""
    from mlcost.report.console import print_json, print_view

    fmt = check_format(fmt, as_json)
    if fmt == "json":
        print_json(data if json_data is None else json_data)
        return
    print_view(render(data), fmt=fmt, explain=explain)
