"""dataprep sits above the core: the core never imports it, and importing it loads no heavy library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "mlcost"
CORE = ("units.py", "errors.py", "spec", "catalog", "estimate", "plan", "finance")


def test_core_does_not_import_dataprep() -> None:
    for name in CORE:
        path = SRC / name
        for f in [path] if path.is_file() else sorted(path.rglob("*.py")):
            assert "dataprep" not in f.read_text(), f


def test_import_is_light() -> None:
    code = (
        "import sys, mlcost.dataprep, mlcost.cli.data; "
        "heavy = [m for m in ('datasketch', 'tokenizers', 'pyarrow', 'zstandard', 'torch') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(SRC.parent)}
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
