"""One console policy for every command.

- On a terminal the width follows the terminal (rich measures it).
- Piped or redirected output is 100 columns (or $COLUMNS), has no colour and no trailing padding.
- A closed pipe (``mlcost plan train ... | head -1``) ends quietly with exit 0: :func:`mlcost.cli.main.main`
  catches BrokenPipeError and :func:`silence_stdout` points stdout at /dev/null so the interpreter's final
  flush cannot fail.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

#: Width of piped output when $COLUMNS is not set (the plan table fits it).
PIPE_WIDTH = 100


def make_console(*, stderr: bool = False, width: int | None = None, file: IO[str] | None = None) -> Any:
    """A rich console following the policy above. Tests pass ``file`` and ``width``."""
    from rich.console import Console

    stream = file if file is not None else (sys.stderr if stderr else sys.stdout)
    if file is not None:
        return Console(
            file=file, width=width or PIPE_WIDTH, color_system=None, highlight=False, soft_wrap=False
        )
    is_tty = hasattr(stream, "isatty") and stream.isatty()
    if is_tty:
        return Console(stderr=stderr, width=width, highlight=False)
    cols = os.environ.get("COLUMNS", "")
    w = width or (int(cols) if cols.isdigit() and int(cols) > 20 else PIPE_WIDTH)
    return Console(stderr=stderr, width=w, color_system=None, highlight=False)


def print_view(view: Any, *, fmt: str = "table", explain: bool = False, console: Any = None) -> None:
    """Print a :class:`mlcost.report.view.View` in ``fmt`` (table, md or csv) on stdout."""
    from mlcost.report import view as v

    if fmt == "md":
        write(v.to_markdown(view, explain))
        return
    if fmt == "csv":
        write(v.to_csv(view, explain))
        return
    console = console or make_console()
    if console.is_terminal:
        v.to_rich(view, console, explain)
        return
    with console.capture() as cap:
        v.to_rich(view, console, explain)
    write(strip_padding(cap.get()), file=console.file)


def strip_padding(text: str) -> str:
    """Drop trailing spaces of each line (rich pads table rows and titles)."""
    return "\n".join(line.rstrip() for line in text.split("\n"))


def write(text: str, file: IO[str] | None = None) -> None:
    out = file or sys.stdout
    out.write(text if text.endswith("\n") or not text else text + "\n")
    out.flush()


def print_json(obj: Any) -> None:
    """The one JSON path: one line of strict JSON (NaN/inf as null, numpy scalars as numbers) on stdout."""
    from mlcost.report.jsonout import dumps

    write(dumps(obj, indent=None))


def silence_stdout() -> None:
    """After a BrokenPipeError: send the rest of stdout to /dev/null (Python docs, 'Note on SIGPIPE')."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def render_text(view: Any, *, width: int = PIPE_WIDTH, explain: bool = False, fmt: str = "table") -> str:
    """The text ``view`` prints as at ``width`` columns (tests and snapshots use it)."""
    import io

    from mlcost.report import view as v

    if fmt == "md":
        return v.to_markdown(view, explain)
    if fmt == "csv":
        return v.to_csv(view, explain)
    buf = io.StringIO()
    v.to_rich(view, make_console(file=buf, width=width), explain)
    return strip_padding(buf.getvalue())
