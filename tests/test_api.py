"""The notebook API: exported names, a light import, and docs/api.md's examples run and match the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import mlcost

DOCS = Path(__file__).parents[1] / "docs" / "api.md"


def test_all_is_guarded() -> None:
    assert sorted(mlcost.__all__) == sorted(
        ["Result", "__version__", "estimate_serve", "estimate_train", "plan_train", "runs"]
    )
    for name in mlcost.__all__:
        assert getattr(mlcost, name) is not None


def test_import_is_light() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import mlcost; mlcost.estimate_train"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert not {m for m in imported if m.split(".")[0] in ("torch", "transformers", "pandas", "plotly")}


def test_docs_examples_run_and_match_the_cli(tmp_path: Path, monkeypatch) -> None:
    from mlcost.cli.main import main

    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)
    assert blocks
    monkeypatch.setenv("MLCOST_LEDGER", f"sqlite:///{tmp_path / 'ledger.db'}")
    ns: dict = {}
    for code in blocks:
        exec(compile(code, str(DOCS), "exec"), ns)
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        main(
            [
                "estimate",
                "train",
                "--model",
                "llama-3.1-8b",
                "--device",
                "h100-sxm",
                "--gpus",
                "64",
                "--tokens",
                "1T",
                "--json",
            ]
        )
    assert ns["est"].to_dict() == json.loads(buf.getvalue())
    assert "<table" in ns["est"]._repr_html_()
