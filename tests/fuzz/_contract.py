"""The CLI contract the fuzz tests assert, and the hostile values they draw from.

Contract for one invocation of ``mlcost ...``: exit 0 with, under ``--json``, one JSON object whose times,
costs, energies and sizes are finite and non-negative; or exit 2 with exactly one line on stderr and no
new ledger row. Never a traceback, never another exit code.

The command runs in-process inside click's ``CliRunner.isolation()`` (its stdin/stdout/stderr), through
:func:`mlcost.cli.main.main`, so the test sees what a user sees: an exception that escapes ``main`` is a
traceback and fails the contract (nothing is swallowed).
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from typer.testing import CliRunner

from mlcost.cli.main import main

#: Values nobody should get a plausible answer for, as typed on a command line.
HOSTILE_TEXT = (
    "-1",
    "0",
    "-0",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "1e308",
    "1e-308",
    "",
    " ",
    "abc",
    "1.5",
    "0.5",
    "2.5e3",
    "99999999999999999999999",
    "0x10",
    "1_000",
    "1e9",
    "\x00",
    "💥",
    "3",
    "-5",
    "1,2",
    "30",
    "12h",
    "1T",
)

hostile = st.one_of(
    st.sampled_from(HOSTILE_TEXT),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.integers(min_value=-3, max_value=300).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=6),
)

#: Keys whose numbers are times, costs, energies, emissions or sizes: finite and >= 0 in every answer.
NONNEG_SUFFIXES = ("_s", "_usd", "_kwh", "_j", "_kg", "_bytes", "_flops", "_usd_per_h", "co2_kg")
#: ... except these, which are signed by meaning (differences, NPV, duals).
SIGNED_PARTS = (
    "npv",
    "roi",
    "saved",
    "saving",
    "delta",
    "slack",
    "dual",
    "change",
    "error",
    "diff",
    "profit",
)

#: Internal spellings that must never reach a user (the message names the flag they typed instead).
INTERNAL_NAME = re.compile(
    r"\b(train job|serve job|cluster|setup)\.[a-z_]+"
    r"|\b(TrainJob|ServeJob|ModelSpec|Cluster|TrainSetup|ServeSetup)\([a-z_]+="
)

RUNNER = CliRunner()


def ledger_rows(ledger: Path) -> int:
    if not ledger.exists():
        return 0
    with sqlite3.connect(ledger) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        return int(conn.execute("select count(*) from runs").fetchone()[0]) if "runs" in tables else 0


def _leaves(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v, key)
    else:
        yield key, value


def _reject_constant(name: str) -> Any:
    raise AssertionError(f"--json output contains {name}")


def check_json(text: str) -> dict[str, Any]:
    data = json.loads(text, parse_constant=_reject_constant)
    assert isinstance(data, dict), "--json must print one JSON object"
    for key, value in _leaves(data):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        assert math.isfinite(value), f"{key} = {value}"
        low = key.lower()
        if low.endswith(NONNEG_SUFFIXES) and not any(p in low for p in SIGNED_PARTS):
            assert value >= 0, f"{key} = {value} is negative"
    return data


def invoke(argv: list[str], ledger: Path | None = None, *, stdin: str | None = None) -> tuple[int, str, str]:
    """Run ``mlcost argv`` in-process and assert the contract; returns (exit code, stdout, stderr)."""
    before = ledger_rows(ledger) if ledger is not None else 0
    with RUNNER.isolation(input=stdin) as (out, err, _):
        try:
            code = main(argv)
        except SystemExit as exc:  # pragma: no cover - main returns codes; a SystemExit is a bug too
            raise AssertionError(f"{argv}: SystemExit({exc.code}) escaped main") from exc
        # any other exception propagates: a traceback is a failure of the contract
        stdout = out.getvalue().decode("utf-8", "replace")
        stderr = err.getvalue().decode("utf-8", "replace")
    if code == 2:
        lines = stderr.splitlines()
        assert len(lines) == 1 and stderr.endswith("\n"), (
            f"{argv}: exit 2 needs one stderr line, got {stderr!r}"
        )
        assert lines[0].startswith("mlcost: error: "), f"{argv}: {stderr!r}"
        assert not INTERNAL_NAME.search(lines[0]), f"{argv}: the message names an internal field: {stderr!r}"
        assert "Traceback" not in stdout + stderr
        if ledger is not None:
            assert ledger_rows(ledger) == before, f"{argv}: exit 2 but a ledger row was written"
        return code, stdout, stderr
    assert code == 0, f"{argv}: exit {code}; stderr {stderr!r}"
    if "--json" in argv:
        check_json(stdout)
    return code, stdout, stderr


def options(draw: Any, spec: dict[str, st.SearchStrategy[str]]) -> list[str]:
    """Draw a subset of ``spec``'s flags with plausible values; half of the time one of them (or one more
    flag) gets a hostile value instead."""
    flags = [f for f in spec if draw(st.integers(0, 2)) == 0]
    bad = draw(st.sampled_from([None, *spec])) if draw(st.booleans()) else None
    if bad is not None and bad not in flags:
        flags.append(bad)
    argv: list[str] = []
    for flag in flags:
        argv += [flag, draw(hostile if flag == bad else spec[flag])]
    return argv
