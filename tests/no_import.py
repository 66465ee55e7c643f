"""Run a snippet in a subprocess where importing torch (or other heavy modules) is refused and recorded, so a
"torch is not imported" test fails even on a machine without torch (where ``'torch' not in sys.modules`` is
always true)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_PRELUDE = """
import atexit, os, sys
class _RefuseHeavyImports:
    blocked = {blocked!r}
    attempts = []
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.blocked:
            self.attempts.append(name)
            raise ImportError("import of " + name + " refused by the test")
        return None
_guard = _RefuseHeavyImports()
sys.meta_path.insert(0, _guard)
def _report():
    if _guard.attempts:
        sys.stderr.write("HEAVY IMPORT ATTEMPTED: " + ", ".join(sorted(set(_guard.attempts))) + "\\n")
        sys.stderr.flush()
        os._exit(97)
atexit.register(_report)
"""


def run_refusing(
    code: str, blocked: Sequence[str] = ("torch",), *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with ``blocked`` top-level modules refused; exit code 97 (and a line on stderr) when the
    code tried to import one, even if it caught the ImportError."""
    script = _PRELUDE.format(blocked=set(blocked)) + code
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout, cwd=str(ROOT)
    )
