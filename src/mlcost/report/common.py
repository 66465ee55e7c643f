"""Pieces shared by the renderers: assumption lines and the full assumptions table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mlcost.report import format as f
from mlcost.report.view import Table, View

#: Longest source text in a one-line assumption of a default view (the full text is under --explain).
SHORT_SOURCE_CHARS = 48
#: A key-assumption line fits an 80-column terminal.
KEY_LINE_CHARS = 79


def short_source(source: str, limit: int = SHORT_SOURCE_CHARS) -> str:
    """The first clause of a source, cut to ``limit`` characters."""
    text = str(source).split("; ")[0].split(" (")[0].strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def assumption_value(name: str, value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if name == "tokens":
            return f.tokens(value)
        if name.endswith(("_usd_per_device_h", "_usd_per_h")) or name.startswith("price["):
            return f.money(value) + "/h"
        if name.endswith("_bytes_per_s"):
            return f.si(value, "B/s")
        if name.endswith("_s"):
            return f.duration(value)
        if name.endswith("_w") or name.endswith("_w_per_device"):
            return f"{f.number(value)} W"
    return f.value(value)


def key_assumptions(
    view: View,
    assumptions: Iterable[dict[str, Any]],
    names: Iterable[str],
    extra: Iterable[dict[str, Any]] = (),
) -> None:
    """One line per named assumption present (in the order of ``names``, then ``extra``), under a heading;
    shown in the default view only (--explain shows the full table)."""
    by_name = {a["name"]: a for a in assumptions}
    picked = [by_name[n] for n in names if n in by_name] + list(extra)
    if not picked:
        return
    view.line("Assumptions that move it most (--explain lists all):", default_only=True)
    for a in picked:
        val = assumption_value(a["name"], a["value"])
        val = val if len(val) <= 30 else val[:29] + "…"
        head = f"  {a['name']} = {val} — "
        view.line(head + short_source(a["source"], max(16, KEY_LINE_CHARS - len(head))), default_only=True)


def assumptions_table(view: View, assumptions: Iterable[dict[str, Any]], *, explain: bool = True) -> None:
    t = Table(
        "Assumptions",
        ["what", "value", "source"],
        right=("value",),
        wrap=("value", "source"),
        explain=explain,
    )
    for a in assumptions:
        t.add(a["name"], assumption_value(a["name"], a["value"]), a["source"])
    view.table(t)
