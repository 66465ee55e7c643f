"""Every third-party module the package imports is declared in pyproject.toml: the core in
``dependencies``, optional ones in an extra (with a comment naming the mlcost module that needs it); the
``all`` extra installs every extra."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: import name -> distribution name, where they differ.
DISTRIBUTION = {
    "yaml": "pyyaml",
    "pynvml": "nvidia-ml-py",
    "cpuinfo": "py-cpuinfo",
    "tomli": "tomli",
    "sklearn": "scikit-learn",
}
#: Imported only as a fallback when the declared package is absent (lightning.pytorch's old name).
FALLBACKS = {"pytorch_lightning"}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=;!~]", requirement, maxsplit=1)[0].lower()


def _third_party_imports() -> set[str]:
    stdlib = set(sys.stdlib_module_names)
    found: set[str] = set()
    for path in (ROOT / "src" / "mlcost").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found |= {n.split(".")[0] for n in names}
    return {n for n in found if n not in stdlib and n not in ("mlcost", "__future__")}


def test_every_import_is_declared() -> None:
    declared = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    for reqs in PYPROJECT["project"]["optional-dependencies"].values():
        declared |= {_name(r) for r in reqs}
    missing = {
        m
        for m in _third_party_imports() - FALLBACKS
        if DISTRIBUTION.get(m, m).replace("_", "-") not in declared
    }
    assert not missing


def test_all_extra_covers_every_feature_extra() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    (all_req,) = extras["all"]
    inside = set(re.search(r"\[(.*)\]", all_req).group(1).split(","))  # type: ignore[union-attr]
    # export-check only validates exported files in SkyPilot's and DeepSpeed's own parsers (heavy; tests skip
    # without them), so it is not part of `all`.
    assert inside == set(extras) - {"all", "dev", "export-check"}
    assert {"lightning", "postgres"} <= inside
    assert any(_name(r) == "accelerate" for r in extras["hf"])


def test_each_extra_has_a_comment_naming_its_module() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    block = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    lines = block.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[a-z]+ = \[", line) and not line.startswith(("all", "dev")):
            j = i
            while j > 0 and lines[j - 1].startswith("#"):
                j -= 1
            comment = " ".join(lines[j:i])
            assert comment and ("/" in comment or ".py" in comment), line
