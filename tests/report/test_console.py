"""Console policy: piped output is unpadded and 100 columns wide; shell completion is on."""

from __future__ import annotations

import os
import subprocess
import sys

from mlcost.report.console import render_text
from mlcost.report.view import Table, View


def test_piped_output_has_no_trailing_padding() -> None:
    v = View()
    t = v.table(Table("t", ["a", "long column"], right=("long column",)))
    t.add("x", "1")
    text = render_text(v, width=100)
    assert all(line == line.rstrip() for line in text.splitlines())


def test_square_brackets_are_text_not_markup() -> None:
    v = View()
    v.line("add a [[provider]] row")
    t = v.table(Table("[bold]", ["[x]"]))
    t.add("[red]y[/red]")
    text = render_text(v, width=80)
    assert "[[provider]]" in text and "[bold]" in text and "[red]y[/red]" in text


def test_shell_completion() -> None:
    env = {**os.environ, "_MLCOST_COMPLETE": "complete_bash", "COMP_WORDS": "mlcost pl", "COMP_CWORD": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from mlcost.cli.main import main; sys.exit(main())"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout.split() == ["plan"], (proc.stdout, proc.stderr)
