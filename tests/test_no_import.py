"""The import guard behind the "torch is not imported" tests fails a snippet that tries to import torch,
even when the snippet catches the ImportError (as lazy optional imports do) and on machines without torch."""

from __future__ import annotations

from tests.no_import import run_refusing


def test_guard_fails_a_caught_import() -> None:
    proc = run_refusing("try:\n    import torch\nexcept ImportError:\n    pass\n")
    assert proc.returncode == 97 and "HEAVY IMPORT ATTEMPTED: torch" in proc.stderr


def test_guard_fails_a_lazy_import_inside_mlcost() -> None:
    proc = run_refusing(
        "from mlcost.errors import require\ntry:\n    require('torch', 'x')\nexcept Exception:\n    pass\n"
    )
    assert proc.returncode == 97


def test_guard_passes_light_code() -> None:
    proc = run_refusing("import mlcost.estimate, mlcost.plan.train\n")
    assert proc.returncode == 0, proc.stderr
