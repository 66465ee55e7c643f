"""`mlcost data`: the JSON contract (docs/json.md), the table, clean one-line errors with exit 2, and a run
killed mid-way (SIGTERM, SIGKILL) that leaves no output or a complete one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlcost.cli.main import main
from tests.dataprep.corpus import synthetic_corpus, write_jsonl

pytest.importorskip("datasketch")

TOP_KEYS = {
    "kind",
    "input",
    "output",
    "files",
    "skipped_files",
    "documents",
    "tokens",
    "bytes",
    "removed_by_reason",
    "quality_filters",
    "decontamination",
    "pii",
    "errors",
    "index",
    "throughput",
    "settings",
    "price",
}
PRICE_KEYS = {
    "model",
    "device",
    "gpus",
    "framing",
    "epochs",
    "clean_epochs",
    "corpus_tokens_before",
    "corpus_tokens_after",
    "trained_tokens_before",
    "trained_tokens_after",
    "before",
    "after",
    "saved",
    "saved_ranges",
    "error_band",
    "assumptions",
}
JOB = ["--model", "llama-3.1-8b", "--device", "h100-sxm", "--gpus", "64"]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_contract_and_saved_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "in").mkdir()
    write_jsonl(tmp_path / "in" / "a.jsonl", synthetic_corpus(40))
    code, out, err = run(
        capsys, "data", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o"), *JOB, "--json"
    )
    assert code == 0, err
    d = json.loads(out)
    assert set(d) == TOP_KEYS and set(d["price"]) == PRICE_KEYS
    assert d["documents"] == {"read": 44, "kept": 40, "removed": 4, "unreadable": 0}
    assert d["removed_by_reason"]["exact_duplicate"]["documents"] == 4
    assert d["tokens"]["before"] > d["tokens"]["after"] > 0
    assert set(d["price"]["saved"]) == {
        "tokens",
        "total_time_s",
        "device_hours",
        "cost_usd",
        "energy_kwh",
        "co2_kg",
    }
    assert d["price"]["saved"]["cost_usd"] > 0 and d["price"]["gpus"] == 64
    assert d["settings"]["near_duplicate"]["bands"] * d["settings"]["near_duplicate"]["rows"] <= 128
    assert json.loads((tmp_path / "o" / "report.json").read_text())["documents"] == d["documents"]


def test_table_shows_reasons_and_money(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_jsonl(tmp_path / "a.jsonl", synthetic_corpus(20))
    code, out, _ = run(capsys, "data", "--input", str(src), *JOB, "--tokenizer", "bytes")
    assert code == 0
    for word in (
        "exact_duplicate",
        "near_duplicate",
        "quality",
        "device_hours",
        "cost_usd",
        "energy_kwh",
        "co2_kg",
    ):
        assert word in out


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (b"", [], "empty input"),
        (b"\x00\x00\x89PNG", [], "binary data"),
        (b'{"body": "x"}\n', [], "--text-field"),
        (b'{"text": "ok"}\n{"text": \n', ["--on-error", "fail"], "line 2: malformed JSON"),
        (b'{"text": "caf\xe9"}\n', ["--on-error", "fail"], "line 1: not UTF-8"),
        (b'{"text": "x"}\n', ["--framing", "cheap"], "--framing"),
        (b'{"text": "x"}\n', ["--model", "llama-9"], "unknown model"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, extra: list[str], message: str
) -> None:
    (tmp_path / "a.jsonl").write_bytes(content)
    code, out, err = run(
        capsys, "data", "--input", str(tmp_path / "a.jsonl"), "-o", str(tmp_path / "o"), *extra
    )
    assert code == 2, (out, err)
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl"]


def test_skipped_lines_are_listed_with_line_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_jsonl(tmp_path / "a.jsonl", synthetic_corpus(5))
    with src.open("ab") as fh:
        fh.write(b"not json\n")
    code, out, _err = run(capsys, "data", "--input", str(src), "--no-price", "--tokenizer", "bytes", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["errors"] == {
        "count": 1,
        "listed": [{"source": "a.jsonl", "line": 6, "error": d["errors"]["listed"][0]["error"]}],
    }
    assert d["documents"]["unreadable"] == 1


def _start(src: Path, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    cmd = [
        sys.executable,
        "-m",
        "mlcost",
        "data",
        "-i",
        str(src),
        "-o",
        str(out),
        "--workers",
        "1",
        "--no-price",
        "--tokenizer",
        "bytes",
        "--cuts",
        "exact",
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_kill_mid_run_leaves_no_output_and_rerun_completes(tmp_path: Path, sig: signal.Signals) -> None:
    base = synthetic_corpus(2000, dup_every=7)
    docs = [{**d, "id": f"{k}-{d['id']}"} for k in range(4) for d in base]  # 9,140 lines, fast to build
    src = write_jsonl(tmp_path / "big.jsonl", docs)
    out = tmp_path / "out"
    proc = _start(src, out)
    deadline = time.time() + 60
    partial: list[Path] = []
    while time.time() < deadline and proc.poll() is None:
        partial = list(tmp_path.glob(".out.partial-*/kept.jsonl"))
        if partial and partial[0].stat().st_size > 50_000:
            break
        time.sleep(0.05)
    assert proc.poll() is None and partial, (
        "the run finished before it could be killed: make the corpus bigger"
    )
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert not out.exists()
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + sig and not list(tmp_path.glob(".out.*"))
        assert b"Traceback" not in proc.stderr.read()  # type: ignore[union-attr]
    rerun = _start(src, out)
    assert rerun.wait(timeout=120) == 0, rerun.stderr.read()  # type: ignore[union-attr]
    assert not list(tmp_path.glob(".out.*"))  # the SIGKILLed run's partial folder is gone
    kept = (out / "kept.jsonl").read_bytes().count(b"\n")
    removed = (out / "removed.jsonl").read_bytes().count(b"\n")
    assert kept + removed == src.read_bytes().count(b"\n")
    assert json.loads((out / "report.json").read_text())["documents"]["kept"] == kept


def test_docs_list_every_json_key() -> None:
    """docs/data.md's `mlcost data --json` table names every top-level key and every price key."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "data.md").read_text()
    section = docs.split("## `mlcost data --json`", 1)[1].split("\n## ", 1)[0]
    for key in TOP_KEYS | PRICE_KEYS:
        assert f"`{key}`" in section, key
    assert "data.md" in (Path(__file__).resolve().parents[2] / "docs" / "json.md").read_text()


def test_eval_set_decontaminates_and_a_bad_eval_set_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = synthetic_corpus(10, dup_every=100)
    src = write_jsonl(tmp_path / "train.jsonl", docs)
    write_jsonl(tmp_path / "eval.jsonl", [{"question": str(docs[3]["text"])[:150]}])
    args = [
        "data",
        "--input",
        str(src),
        "--no-price",
        "--tokenizer",
        "bytes",
        "--eval",
        str(tmp_path / "eval.jsonl"),
    ]
    code, out, err = run(capsys, *args, "--eval-text-field", "question", "--json")
    assert code == 0, err
    assert json.loads(out)["decontamination"]["documents"] == 1
    code, out, err = run(capsys, *args)
    assert code == 2 and "--eval" in err and "--eval-text-field" in err


def test_a_pool_terminated_right_after_fork_never_hangs(tmp_path: Path) -> None:
    """Regression: an input that fails at once terminates the worker pool right after fork(). Workers that
    inherited the CLI's Python-level SIGTERM handler lost that signal (CPython resets pending signals after
    fork) and the pool hung in terminate(); workers are now forked with SIGTERM at its default action."""
    import subprocess
    import sys

    (tmp_path / "a.jsonl").write_bytes(b"")
    script = (
        "from mlcost.cli.main import main\n"
        "for i in range(25):\n"
        f"    assert main(['data', '--input', {str(tmp_path / 'a.jsonl')!r}, '-o', {str(tmp_path / 'o')!r},"
        " '--workers', '2', '--no-price']) == 2\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
