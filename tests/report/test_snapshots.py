"""Every command's default view at 80 and 120 columns: a stored snapshot, at most 40 lines at 80 columns,
no exponent notation; --explain shows everything the default shows plus the full assumptions.

Snapshots live in tests/report/snapshots/; regenerate them with MLCOST_UPDATE_SNAPSHOTS=1 after a
deliberate change of the catalog or the renderers (and read the diff)."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

from mlcost.cli.main import main

#: Read at import: the suite-wide isolation fixture clears every MLCOST_* variable before a test runs.
UPDATE_SNAPSHOTS = os.environ.get("MLCOST_UPDATE_SNAPSHOTS") == "1"
SNAPSHOTS = Path(__file__).parent / "snapshots"
ALLOCATE = str(Path(__file__).parents[2] / "examples" / "allocate" / "gpu_pool.toml")
COMMANDS = {
    "estimate_train": ["estimate", "train", "--model", "llama-3.1-8b", "--gpus", "64", "--tokens", "1T"],
    "estimate_serve": ["estimate", "serve", "--model", "llama-3.1-70b", "--tp", "4", "--batch", "32"],
    "plan_train": ["plan", "train", "--model", "llama-3.1-8b", "--tokens", "1T", "--deadline", "30d"],
    "plan_serve": ["plan", "serve", "--model", "llama-3.1-8b", "--requests-per-s", "5", "--ttft-ms", "500"],
    "tco": ["tco", "--models", "1b,3b,7b", "--train-tokens", "1e12", "--tokens-per-day", "1e9"],
    "allocate": ["allocate", ALLOCATE],
    "devices": ["devices"],
    "models": ["models"],
}


def render(argv: list[str], width: int, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", str(width))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 0
    # what varies between runs: the planner's own run time, run ids, ledger paths
    text = re.sub(r"in \d+\.\d\d s", "in X s", buf.getvalue())
    text = re.sub(r"\b[0-9a-f]{32}\b", "RUN_ID", text)
    return re.sub(r"/\S*/(ledger|m)\.db", "LEDGER", text)


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_default_view(name: str, width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    text = render(COMMANDS[name], width, monkeypatch)
    assert "e+" not in text, text
    assert max(len(line) for line in text.splitlines()) <= width
    if width == 80 and name not in ("devices", "models"):  # catalogs list every row
        assert len(text.splitlines()) <= 40, text
    snap = SNAPSHOTS / f"{name}_{width}.txt"
    if UPDATE_SNAPSHOTS or not snap.exists():
        snap.parent.mkdir(exist_ok=True)
        snap.write_text(text)
    assert text == snap.read_text()


@pytest.mark.parametrize("name", ["estimate_train", "estimate_serve", "plan_train", "tco"])
def test_explain_shows_the_full_assumptions(name: str, monkeypatch: pytest.MonkeyPatch, run_cli) -> None:
    import json

    short = render(COMMANDS[name], 120, monkeypatch)
    full = render([*COMMANDS[name], "--explain"], 120, monkeypatch)
    assert len(full.splitlines()) > len(short.splitlines())
    data = json.loads(run_cli([*COMMANDS[name], "--json"]))
    flat = " ".join(full.split())
    for a in data["assumptions"]:
        assert a["name"] in flat, a["name"]
    for table_title in ("Per step", "Memory per device") if name == "estimate_train" else ():
        assert table_title in full


def test_tco_prints_square_brackets(monkeypatch: pytest.MonkeyPatch) -> None:
    text = render([*COMMANDS["tco"], "--explain"], 200, monkeypatch)
    assert "[[provider]]" in text or "[[price]]" in text or "[" in text
    assert "a [] row" not in text


def test_runs_list_from_a_fixture_ledger(ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for width in (80, 120):
        text = render(["runs", "--ledger", ledger_url], width, monkeypatch)
        assert "e+" not in text and len(text.splitlines()) <= 40
        assert max(len(line) for line in text.splitlines()) <= width


@pytest.mark.parametrize("fmt", ["md", "csv"])
def test_md_and_csv(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    text = render([*COMMANDS["estimate_train"], "--format", fmt], 80, monkeypatch)
    if fmt == "md":
        assert "| metric | estimate | range |" in text
    else:
        assert text.splitlines()[0] == "metric,estimate,range"


def test_broken_pipe_exits_0() -> None:
    import subprocess
    import sys

    cmd = f"{sys.executable} -m mlcost plan train --model llama-3.1-8b --tokens 1T --explain | head -1"
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.startswith("llama-3.1-8b")


@pytest.mark.parametrize("extra", [[], ["--spot"], ["--deadline", "3d"]])
def test_plan_table_fits_100_columns(extra: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    text = render(["plan", "train", "--model", "llama-3.1-8b", "--tokens", "1T", *extra], 100, monkeypatch)
    assert "hidden at this width" not in text
    header = next(line for line in text.splitlines() if line.startswith("#  device"))
    assert header.split() == [
        "#",
        "device",
        "n",
        "TP/PP/DP",
        "prec",
        "where",
        "time",
        "cost",
        "MFU",
        "GiB/dev",
    ]
    assert max(len(line) for line in text.splitlines()) <= 100


def test_measure_dry_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mlcost measure train --dry-run` (replayed readings, no model run) at 80 and 120 columns. The
    prediction uses the host's catalog row, so the host is pinned: the 2 vCPU AVX2 EPYC fixture."""
    from mlcost.catalog import host, parse_cpuinfo

    epyc = parse_cpuinfo((Path(__file__).parents[1] / "fixtures" / "cpuinfo" / "epyc_avx2.txt").read_text())
    monkeypatch.setattr(host, "detect_host", lambda: epyc)
    argv = ["measure", "train", "--model", "gpt2", "--layers", "2", "--d-model", "64", "--vocab", "512"]
    argv += ["--seq-len", "32", "--dry-run", "--ledger", str(tmp_path / "m.db")]
    for width in (80, 120):
        text = render(argv, width, monkeypatch)
        assert "e+" not in text and len(text.splitlines()) <= 40
        assert max(len(line) for line in text.splitlines()) <= width
        text = text.split("\n  run RUN_ID")[0]  # the ledger path (a tmp dir) follows
        snap = SNAPSHOTS / f"measure_dry_run_{width}.txt"
        if UPDATE_SNAPSHOTS or not snap.exists():
            snap.write_text(text)
        assert text == snap.read_text()
        explained = render([*argv, "--explain"], width, monkeypatch)
        assert "energy: dry run" in " ".join(explained.split())


@pytest.mark.parametrize("argv", [["env"], ["calibrate", "--report"]])
def test_other_commands_fit(argv: list[str], ledger_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Machine- or ledger-dependent views: no snapshot, but the same limits."""
    if argv[0] == "calibrate":
        argv = [*argv, "--ledger", ledger_url]
    for width in (80, 120):
        text = render(argv, width, monkeypatch)
        assert "e+" not in text and len(text.splitlines()) <= 40
        assert max(len(line) for line in text.splitlines()) <= width
