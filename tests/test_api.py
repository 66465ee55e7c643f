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


def test_names_and_defaults_are_the_clis() -> None:
    """Each API parameter is the CLI option of the same name (--snake-case) with the same default."""
    import inspect

    import typer.main

    from mlcost.cli.main import build_app

    app = typer.main.get_command(build_app())
    cases = {
        ("estimate", "train"): mlcost.estimate_train,
        ("estimate", "serve"): mlcost.estimate_serve,
        ("plan", "train"): mlcost.plan_train,
        ("runs",): mlcost.runs,
    }
    for path, fn in cases.items():
        cmd = app
        for word in path:
            cmd = cmd.commands[word]  # type: ignore[attr-defined]
        options = {o: p for p in cmd.params for o in getattr(p, "opts", [])}
        for name, param in inspect.signature(fn).parameters.items():
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                continue  # **options: any other flag, by the command's own parameter names
            flag = "--" + name.replace("_", "-")
            assert flag in options, (path, name)
            cli_default = options[flag].default
            if param.default is inspect.Parameter.empty:
                assert options[flag].required, (path, name)
            elif name == "catalog":
                assert not cli_default
            else:
                assert param.default == cli_default, (path, name, param.default, cli_default)


def test_to_pandas_has_one_row_per_plan() -> None:
    import pytest

    pytest.importorskip("pandas")
    plan = mlcost.plan_train("llama-3.1-8b", "1T", devices="h100-sxm", counts="8,16", top=2)
    df = plan.to_pandas()
    assert len(df) == 2 and list(df["count"]) == [p["count"] for p in plan["plans"]]


def test_other_flags_pass_as_keywords_and_match_the_cli() -> None:
    """Flags without a named parameter (framework families, MoE, fp8 weights) pass as keywords: the result
    is the CLI's JSON for the same flags."""
    from mlcost.api import _run_json

    kw = dict(
        framework="nemo", ep=8, pp=2, virtual_stages=24, precision="fp8", fp8_params=True, ep_overlap=0.335
    )
    got = mlcost.estimate_train(model="qwen3-30b-a3b", gpus=16, **kw)  # type: ignore[arg-type]
    cli = [
        "estimate", "train", "--model", "qwen3-30b-a3b", "--device", "h100-sxm", "--gpus", "16",
        "--framework", "nemo", "--ep", "8", "--pp", "2", "--virtual-stages", "24", "--precision", "fp8",
        "--fp8-params", "--ep-overlap", "0.335",
    ]  # fmt: skip
    assert got.to_dict() == _run_json(cli)
    assert any(a["name"] == "fp8" and "(--fp8-params)" in a["source"] for a in got["assumptions"])


def test_unknown_or_repeated_keyword_is_a_type_error() -> None:
    import pytest

    from mlcost.api import cli_options

    with pytest.raises(TypeError, match="unexpected keyword argument 'framwork'; did you mean 'framework'"):
        mlcost.estimate_train(framwork="nemo")
    with pytest.raises(TypeError, match="'price' twice"):
        mlcost.estimate_train(price_usd_per_h=2.0, price=3.0)
    assert cli_options("estimate", "train")["moe_dispatcher"] == "--moe-dispatcher"
    assert "json_out" not in cli_options("estimate", "train")
