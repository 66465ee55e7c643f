"""A view is what a renderer returns: lines of text and tables of already-formatted cells. One emitter
turns it into a terminal table (rich), Markdown, CSV or HTML, so every command has the same four faces.

Blocks marked ``explain=True`` appear only with ``--explain`` (the full assumptions table and the detail
tables); the rest is the short default view: the answer and the assumptions that move it most.
"""

from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass, field
from typing import Any, Literal

Style = Literal["", "bold", "red", "green", "dim"]


@dataclass
class Line:
    """One line of text (never parsed as markup)."""

    text: str
    style: Style = ""
    explain: bool = False
    default_only: bool = False  # hidden under --explain (which shows the full table instead)


@dataclass
class Table:
    """A table of formatted cells. ``right`` names the right-aligned columns; ``wrap`` the columns that may
    fold (others keep their width); ``no_wrap`` columns never fold."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    right: tuple[str, ...] = ()
    wrap: tuple[str, ...] = ()
    explain: bool = False
    default_only: bool = False
    #: Columns dropped (the last one first) when the table is wider than the terminal; a note says so.
    optional: tuple[str, ...] = ()
    section_before: tuple[int, ...] = ()  # row indices preceded by a rule

    def add(self, *cells: Any) -> None:
        self.rows.append(["-" if c is None else str(c) for c in cells])


Block = Line | Table


@dataclass
class View:
    """An ordered list of blocks."""

    blocks: list[Block] = field(default_factory=list)

    def line(self, text: str, style: Style = "", explain: bool = False, default_only: bool = False) -> None:
        self.blocks.append(Line(text, style, explain, default_only))

    def table(self, table: Table) -> Table:
        self.blocks.append(table)
        return table

    def shown(self, explain: bool) -> list[Block]:
        return [b for b in self.blocks if (b.default_only is False if explain else not b.explain)]


FORMATS = ("table", "json", "md", "csv")


def to_markdown(view: View, explain: bool = False) -> str:
    out: list[str] = []
    for b in view.shown(explain):
        if isinstance(b, Line):
            text = b.text.replace("|", "\\|")
            out.append(f"**{text}**" if b.style == "bold" else text)
            out.append("")
        else:
            if b.title:
                out.append(f"**{b.title}**")
                out.append("")
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in b.columns) + " |")
            out.append("|" + "|".join("---:" if c in b.right else "---" for c in b.columns) + "|")
            for row in b.rows:
                out.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in row) + " |")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def to_csv(view: View, explain: bool = False) -> str:
    """The tables only; with several, each starts with a '# title' line and they are separated by a blank
    line."""
    tables = [b for b in view.shown(explain) if isinstance(b, Table)]
    buf = io.StringIO()
    for i, t in enumerate(tables):
        if len(tables) > 1:
            if i:
                buf.write("\n")
            buf.write(f"# {t.title}\n")
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(t.columns)
        w.writerows(t.rows)
    return buf.getvalue()


def to_html(view: View, explain: bool = True) -> str:
    """A fragment of HTML (the report and the notebook reprs use it). With ``explain``, the explain-only
    tables are folded into ``<details>`` elements (closed until clicked)."""
    out: list[str] = []
    for b in view.shown(explain):
        if isinstance(b, Line):
            tag = "p class='strong'" if b.style == "bold" else "p"
            out.append(f"<{tag}>{html.escape(b.text)}</p>")
            continue
        folded = explain and b.explain
        if folded:
            out.append(f"<details><summary>{html.escape(b.title or 'details')}</summary>")
        out.append("<table class='mlcost'>")
        if b.title and not folded:
            out.append(f"<caption>{html.escape(b.title)}</caption>")
        out.append(
            "<thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in b.columns) + "</tr></thead><tbody>"
        )
        for row in b.rows:
            cells = "".join(
                f"<td class='{'r' if col in b.right else 'l'}'>{html.escape(c)}</td>"
                for col, c in zip(b.columns, row, strict=False)
            )
            out.append(f"<tr>{cells}</tr>")
        out.append("</tbody></table>")
        if folded:
            out.append("</details>")
    return "\n".join(out)


def to_rich(view: View, console: Any, explain: bool = False) -> None:
    """Print on a rich console; cells are Text objects, so '[[provider]]' prints as typed."""
    from rich.text import Text

    for b in view.shown(explain):
        if isinstance(b, Line):
            console.print(Text(b.text, style=b.style or ""), overflow="fold")
            continue
        if b.title:  # a line of its own: rich would wrap a title to the table's width
            console.print(Text(b.title, style="bold"), overflow="fold")
        dropped: list[str] = []
        rt = _rich_table(b, dropped)
        while b.optional and len(dropped) < len(b.optional) and _natural_width(b, dropped) > console.width:
            dropped.append(b.optional[-1 - len(dropped)])
            rt = _rich_table(b, dropped)
        console.print(rt)
        if dropped:
            console.print(
                Text(
                    f"({', '.join(reversed(dropped))} hidden at this width; a wider terminal or --format csv shows them)"
                ),
                overflow="fold",
            )


def _natural_width(b: Table, dropped: list[str]) -> int:
    """Width of ``b`` without folding: widest cell per column plus two spaces between columns."""
    from rich.cells import cell_len

    widths = [
        max([cell_len(c), *(cell_len(r[i]) for r in b.rows)])
        for i, c in enumerate(b.columns)
        if c not in dropped
    ]
    return sum(widths) + 2 * (len(widths) - 1) + 1


def _rich_table(b: Table, dropped: list[str]) -> Any:
    from rich import box
    from rich.table import Table as RichTable
    from rich.text import Text

    keep = [i for i, c in enumerate(b.columns) if c not in dropped]
    rt = RichTable(
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        padding=(0, 1, 0, 0),
    )
    for i in keep:
        col = b.columns[i]
        rt.add_column(
            Text(col),
            justify="right" if col in b.right else "left",
            overflow="fold",
            no_wrap=col not in b.wrap,
            ratio=1 if col in b.wrap else None,
            # a column that may not fold keeps its widest cell (up to 40) when a folding column is long
            min_width=None if col in b.wrap else min(40, max([len(col), *(len(r[i]) for r in b.rows)])),
        )
    for j, row in enumerate(b.rows):
        if j in b.section_before:
            rt.add_section()
        rt.add_row(*[Text(row[i]) for i in keep])
    return rt
