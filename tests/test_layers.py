"""The layer contract of .importlinter (DESIGN.md's layer order) is checked by `lint-imports` in
scripts/check. These tests run it on the real tree and on a copy of the package with a deliberate violation,
a deliberate cycle, and the optional layers (compress, dataprep) present."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parents[1]
RUN = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` with ``root``'s .importlinter on ``root/src``."""
    return subprocess.run(
        [sys.executable, "-c", RUN],
        cwd=root,
        env={"PYTHONPATH": str(root / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package and the contract in a temporary directory."""
    shutil.copytree(
        ROOT / "src" / "mlcost", tmp_path / "src" / "mlcost", ignore=shutil.ignore_patterns("data")
    )
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def add(tree: Path, module: str, source: str) -> None:
    path = (tree / "src" / Path(*module.split("."))).with_suffix(".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)


def test_the_real_tree_keeps_every_contract() -> None:
    out = lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 kept, 0 broken" in out.stdout


def test_the_copy_passes_before_it_is_broken(tree: Path) -> None:
    assert lint(tree).returncode == 0


def test_a_layer_violation_fails(tree: Path) -> None:
    add(
        tree, "mlcost.estimate._violation", "from mlcost.plan import pareto  # estimate may not import plan\n"
    )
    out = lint(tree)
    assert out.returncode == 1
    assert "mlcost.estimate is not allowed to import mlcost.plan" in out.stdout


def test_a_lazy_import_of_the_edge_fails(tree: Path) -> None:
    add(tree, "mlcost.catalog._violation", "def f():\n    from mlcost import context\n    return context\n")
    out = lint(tree)
    assert out.returncode == 1
    assert "mlcost.catalog is not allowed to import mlcost.context" in out.stdout


def test_a_cycle_inside_a_layer_fails(tree: Path) -> None:
    add(tree, "mlcost.estimate._a", "from mlcost.estimate import _b\n")
    add(tree, "mlcost.estimate._b", "from mlcost.estimate import _a\n")
    out = lint(tree)
    assert out.returncode == 1
    assert "No cycles are allowed in mlcost.estimate" in out.stdout


def test_optional_layers_once_they_exist(tree: Path) -> None:
    add(
        tree,
        "mlcost.compress.__init__",
        "from mlcost.measure import record\nfrom mlcost.estimate import train\n",
    )
    add(tree, "mlcost.dataprep.__init__", "from mlcost.estimate import train\n")
    assert lint(tree).returncode == 0
    add(tree, "mlcost.dataprep.bad", "from mlcost.report import console  # report sits above dataprep\n")
    out = lint(tree)
    assert out.returncode == 1
    assert "mlcost.dataprep is not allowed to import mlcost.report" in out.stdout
    add(tree, "mlcost.dataprep.bad", "from mlcost import compress  # independent siblings\n")
    out = lint(tree)
    assert out.returncode == 1 and "mlcost.dataprep is not allowed to import mlcost.compress" in out.stdout
