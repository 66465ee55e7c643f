"""Citations inside the package resolve inside the repository (issue #8: `grep -rn "reference/" src/` finds
only paths that exist)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CITED = re.compile(
    r"(?<![\w/.-])((?:docs|benchmarks|tests|examples|scripts)/[\w./-]+\.(?:py|md|toml|csv|json))"
)


def _package_text() -> list[tuple[Path, str]]:
    files = [
        p for p in (ROOT / "src").rglob("*") if p.is_file() and p.suffix in (".py", ".csv", ".toml", ".md")
    ]
    return [(p, p.read_text(encoding="utf-8")) for p in files]


def test_every_cited_repository_path_exists() -> None:
    missing = [
        f"{p.relative_to(ROOT)}: {m}"
        for p, text in _package_text()
        for m in CITED.findall(text)
        if not (ROOT / m).exists()
    ]
    assert not missing


def test_reference_notes_are_cited_by_their_repository_path() -> None:
    bare = [
        f"{p.relative_to(ROOT)}: {m.group(0)}"
        for p, text in _package_text()
        for m in re.finditer(r"[\w./-]*reference/[\w.]+", text)
        if not m.group(0).startswith("docs/reference/") or not (ROOT / m.group(0)).exists()
    ]
    assert not bare
