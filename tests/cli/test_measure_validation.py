"""`mlcost measure train|serve` check their input before torch starts: invalid input → exit 2, one line on
stderr naming the flag, no ledger row, torch never imported (issue #9 item 2)."""

from __future__ import annotations

import json
import subprocess
import sys

TINY = ["--model", "gpt2", "--layers", "2", "--d-model", "64", "--vocab", "512", "--seq-len", "32"]
SERVE = ["--model", "gpt2", "--layers", "1", "--d-model", "32", "--vocab", "256"]

#: (command and arguments, the flag the message must name)
CASES: list[tuple[list[str], str]] = [
    (["train", *TINY, "--d-model", "0"], "--d-model"),
    (["train", *TINY, "--heads", "0"], "--heads"),
    (["train", *TINY, "--heads", "3"], "--heads"),
    (["train", *TINY, "--layers", "-1"], "--layers"),
    (["train", *TINY, "--vocab", "0"], "--vocab"),
    (["train", *TINY, "--micro-batch", "0"], "--micro-batch"),
    (["train", *TINY, "--global-batch", "0"], "--global-batch"),
    (["train", *TINY, "--global-batch", "3", "--micro-batch", "2"], "--global-batch"),
    (["train", *TINY, "--seq-len", "0"], "--seq-len"),
    (["train", *TINY, "--steps", "0"], "--steps"),
    (["train", *TINY, "--warmup", "-1"], "--warmup"),
    (["train", *TINY, "--precision", "fp64"], "--precision"),
    (["train", *TINY, "--recompute", "some"], "--recompute"),
    (["train", *TINY, "--device", "tpu"], "--device"),
    (["train", *TINY, "--device", "cuda"], "--device"),  # this test machine has no NVIDIA driver
    (["train", *TINY, "--strategy", "bf61"], "strategy"),
    (["train", *TINY, "--compare", "baseline,ddp"], "--strategy"),
    (["train", *TINY, "--data", "/nonexistent/corpus.txt"], "--data"),
    (["train", *TINY, "--data", "/"], "--data"),
    (["train", *TINY, "--price-usd-per-h", "-5"], "--price-usd-per-h"),
    (["train", *TINY, "--pue", "0.2"], "--pue"),
    (["train", *TINY, "--carbon-kg-per-kwh", "nan"], "--carbon-kg-per-kwh"),
    (["train", *TINY, "--compare", "baseline,fused", "--repeats", "0"], "--repeats"),
    (["serve", *SERVE, "--prompt-len", "0"], "--prompt-len"),
    (["serve", *SERVE, "--output-len", "0"], "--output-len"),
    (["serve", *SERVE, "--batch", "0"], "--batch"),
    (["serve", *SERVE, "--requests", "0"], "--requests"),
    (["serve", *SERVE, "--precision", "tf32"], "--precision"),
    (["serve", *SERVE, "--d-model", "0"], "--d-model"),
    (["serve", *SERVE, "--device", "cuda:x"], "--device"),
    (["serve", *SERVE, "--pue", "0.5"], "--pue"),
    (["serve", *SERVE, "--engine", "vllm"], "--engine"),
    (["serve", *SERVE, "--engine", "hf"], "--rps"),
    (["serve", *SERVE, "--engine", "hf", "--rps", "0"], "--rps"),
    (["serve", *SERVE, "--engine", "hf", "--rps", "nan"], "--rps"),
    (["serve", *SERVE, "--rps", "2"], "--rps"),
    (["serve", *SERVE, "--engine", "hf", "--rps", "2", "--max-seqs", "0"], "--max-seqs"),
]

_SCRIPT = """
import contextlib, io, json, sys
from mlcost.cli.main import main
from mlcost.measure.ledger import Ledger
url, cases = sys.argv[1], json.loads(sys.argv[2])
ledger = Ledger(url)
before = ledger.count()
results = []
for args in cases:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(["measure", *args, "--ledger", url])
    results.append({"rc": rc, "err": err.getvalue()})
print(json.dumps({"results": results, "rows": ledger.count() - before, "torch": "torch" in sys.modules}))
"""


def test_invalid_input_is_refused_before_torch(tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, url, json.dumps([args for args, _ in CASES])],
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for (args, flag), res in zip(CASES, out["results"], strict=True):
        lines = [line for line in res["err"].splitlines() if line.strip()]
        assert res["rc"] == 2, (args, res)
        assert len(lines) == 1 and "Traceback" not in res["err"], (args, res["err"])
        assert flag in lines[0], (args, lines[0])
    assert out["rows"] == 0, "invalid input wrote ledger rows"
    assert not out["torch"], "torch was imported before the input was checked"
