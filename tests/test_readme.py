"""The README's quick start stays true: it has exactly the two commands, the first runs here, the second is
what CI runs."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Quick start\s+```bash\n(.*?)```", text, re.S)
    assert block, "README has no quick-start bash block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_has_two_commands() -> None:
    assert len(quick_start_commands()) == 2


def test_main_job_runs_on_defaults() -> None:
    """First command: the main job on the built-in defaults (the package is installed already here)."""
    first = quick_start_commands()[0]
    assert first.endswith("mlcost estimate train")
    proc = subprocess.run(
        [sys.executable, "-m", "mlcost", "estimate", "train", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["fits"] is True
    human = subprocess.run(
        [sys.executable, "-m", "mlcost", "estimate", "train"], capture_output=True, text=True, timeout=120
    )
    assert human.returncode == 0 and "Assumptions" in human.stdout


def test_ci_runs_the_readme_test_command() -> None:
    second = quick_start_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text()
    for part in second.split("&&"):
        script = part.strip()
        assert (ROOT / script).exists(), script
        assert f"bash {script}" in ci
