"""report/ renders only: the terminal text of an estimate, rendered to a plain StringIO console, shows the
numbers the estimate holds, formatted by units.py."""

from __future__ import annotations

import io
import math
import re

import numpy as np
from rich.console import Console

from mlcost.catalog import builtin_catalog
from mlcost.estimate import estimate_serve, estimate_train
from mlcost.report import format as f
from mlcost.report.console import make_console
from mlcost.report.estimate import serve_view, train_view
from mlcost.report.jsonout import dumps
from mlcost.report.view import to_rich
from mlcost.spec import Cluster, ServeJob, TrainJob

CAT = builtin_catalog()


def text_of(view, est, explain: bool = True) -> str:  # type: ignore[no-untyped-def]
    """The terminal text of ``view`` over the estimate's ``to_dict()`` contract (what the CLI renders)."""
    console = Console(file=io.StringIO(), width=200, color_system=None)
    to_rich(view(est.to_dict()), console, explain=explain)
    return console.file.getvalue()  # type: ignore[attr-defined]


def row(text: str, label: str) -> str:
    """The first table row whose first cell is ``label``, as its cells."""
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"\s{2,}", line.strip())]
        if cells and cells[0] == label:
            return " | ".join(cells)
    raise AssertionError(f"no row {label!r} in\n{text}")


def test_train_text_shows_the_estimate() -> None:
    model = CAT.model("llama-3.1-8b")
    job = TrainJob(tokens=1e12, seq_len=4096, global_batch=512, micro_batch=1, tp=2, zero=1)
    est = estimate_train(model, job, Cluster(device="h100-sxm", count=64), catalog=CAT)
    text = text_of(train_view, est)
    assert text.splitlines()[0] == "llama-3.1-8b (8.0 B params) on 64 × h100-sxm — TP 2 · PP 1 · DP 32"
    assert row(text, "step time").startswith(f"step time | {f.duration(est.step_time_s)}")
    assert row(text, "MFU").startswith(f"MFU | {f.pct(est.mfu)}")
    assert row(text, "cost").startswith(f"cost | {f.money(est.cost_usd)}")
    assert f"({est.memory.total / est.memory.capacity:.0%})" in text
    assert f"Whole job (±{est.error_band.relative:.0%})" in text
    for a in est.assumptions:
        assert a.name in text
    assert "\x1b[" not in text  # no colour codes


def test_train_text_when_it_does_not_fit() -> None:
    model = CAT.model("llama-3.1-70b")
    job = TrainJob(tokens=1e9, seq_len=4096, global_batch=8, micro_batch=1, zero=0)
    est = estimate_train(model, job, Cluster(device="h100-sxm", count=1), catalog=CAT)
    assert not est.fits
    text = text_of(train_view, est)
    assert f"does not fit: needs {f.bytes_(est.memory.total)} of {f.bytes_(est.memory.capacity)}" in text
    for s in est.fit_suggestions:
        assert s in text


def test_serve_text_shows_the_estimate() -> None:
    model = CAT.model("llama-3.1-8b")
    est = estimate_serve(
        model, ServeJob(batch=16, prompt_len=1024, output_len=256), Cluster(device="h100-sxm"), catalog=CAT
    )
    text = text_of(serve_view, est)
    assert text.splitlines()[0].startswith("llama-3.1-8b (8.0 B params) on 1 × h100-sxm")
    assert f.duration(est.ttft_s) in text
    assert est.bound in text
    for a in est.assumptions:
        assert a.name in text


def test_a_missing_price_is_said_not_hidden() -> None:
    model = CAT.model("gpt2")
    job = TrainJob(tokens=1e6, seq_len=256, global_batch=8, micro_batch=8, precision="fp32")
    est = estimate_train(model, job, Cluster(device="cpu-epyc-2vcpu"), catalog=CAT)
    assert est.cost_usd is None
    assert row(text_of(train_view, est), "cost").startswith("cost | n/a (no price)")


def test_json_is_strict_and_plain() -> None:
    out = dumps({"a": np.float64(1.5), "b": float("nan"), "c": [np.int64(3), math.inf], 4: (1, 2)})
    assert (
        out
        == '{\n  "a": 1.5,\n  "b": null,\n  "c": [\n    3,\n    null\n  ],\n  "4": [\n    1,\n    2\n  ]\n}'
    )


def test_make_console_passes_options() -> None:
    buf = io.StringIO()
    console = make_console(file=buf, width=40)
    console.print("[bold]x[/bold]")
    assert buf.getvalue() == "x\n"  # a file is not a terminal: no colour codes, markup applied
    assert console.width == 40
