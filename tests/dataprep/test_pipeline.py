"""The whole pipeline: nothing lost, kept documents byte-for-byte, reasons audited, worker-count invariance."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from mlcost.dataprep import CutConfig, run_pipeline
from mlcost.dataprep.decontam import EvalIndex
from mlcost.dataprep.io import DataInputError

from .corpus import synthetic_corpus, synthetic_text, write_jsonl

pytest.importorskip("datasketch")


def _corpus(tmp_path: Path) -> Path:
    rng = random.Random(3)
    docs = synthetic_corpus(60)
    base = str(docs[0]["text"]).split()
    near = list(base)
    near[10] = "edited"
    docs.append({"id": "near0", "text": " ".join(near)})
    docs.append({"id": "bad0", "text": "{" + synthetic_text(rng)})  # C4 curly-bracket rule
    docs.append({"id": "case0", "text": str(docs[1]["text"]).upper()})  # exact after normalisation
    path = write_jsonl(tmp_path / "in.jsonl", docs)
    with path.open("ab") as fh:
        fh.write(b'{"id": "broken", "text": \n')
        fh.write(b'{"id": "latin", "text": "caf\xe9"}\n')
        fh.write(b'{"id": "notext", "body": "x"}\n')
    return path


def test_nothing_lost_and_kept_documents_unchanged(tmp_path: Path) -> None:
    src = _corpus(tmp_path)
    res = run_pipeline(src, tmp_path / "out", CutConfig(tokenizer="bytes"))
    kept = (tmp_path / "out" / "kept.jsonl").read_bytes().splitlines()
    removed = [json.loads(x) for x in (tmp_path / "out" / "removed.jsonl").read_text().splitlines()]
    lines = [ln for ln in src.read_bytes().splitlines() if ln.strip()]
    assert len(kept) + len(removed) == len(lines) == res.documents_read
    assert set(kept) <= set(lines)  # byte-for-byte
    reasons = {r["id"]: r for r in removed}
    assert reasons["c9"]["reason"] == "exact_duplicate" and reasons["c9"]["representative"] == "u9"
    assert reasons["case0"]["reason"] == "exact_duplicate" and reasons["case0"]["cluster"].startswith(
        "exact-"
    )
    assert reasons["near0"]["reason"] == "near_duplicate" and reasons["near0"]["representative"] == "u0"
    assert reasons["bad0"]["reason"] == "quality" and reasons["bad0"]["filter"] == "c4_curly_bracket"
    # Removed documents carry the original JSON object.
    assert reasons["c9"]["document"] == json.loads(lines[10])
    errors = {(e["line"], e["error"].split(" (")[0]) for e in res.errors}
    n = len(lines)
    assert errors == {(n - 2, "malformed JSON"), (n - 1, "not UTF-8"), (n, "missing text field 'text'")}
    unreadable = [r for r in removed if r["reason"] == "unreadable"]
    assert {r["line"] for r in unreadable} == {n - 2, n - 1, n} and all("raw_text" in r for r in unreadable)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["documents"]["read"] == len(lines)
    assert report["tokens"]["before"] - report["tokens"]["after"] == sum(
        v["tokens"] for v in report["removed_by_reason"].values()
    )


def test_on_error_fail_stops_with_the_line_and_writes_nothing(tmp_path: Path) -> None:
    src = _corpus(tmp_path)
    with pytest.raises(DataInputError, match=r"in.jsonl line \d+: malformed JSON"):
        run_pipeline(src, tmp_path / "out", CutConfig(on_error="fail", tokenizer="bytes"))
    assert [p.name for p in tmp_path.iterdir()] == ["in.jsonl"]


def test_two_workers_give_the_same_output(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", synthetic_corpus(700, seed=5))
    run_pipeline(src, tmp_path / "a", CutConfig(tokenizer="bytes", workers=1))
    run_pipeline(src, tmp_path / "b", CutConfig(tokenizer="bytes", workers=2))
    for name in ("kept.jsonl", "removed.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_pii_rewrites_only_the_text_field_of_changed_documents(tmp_path: Path) -> None:
    rng = random.Random(2)
    docs = [
        {"id": "p", "text": synthetic_text(rng) + " Write to a.b@example.com today.", "keep": [1, 2]},
        {"id": "q", "text": synthetic_text(rng)},
    ]
    src = write_jsonl(tmp_path / "in.jsonl", docs)
    res = run_pipeline(src, tmp_path / "out", CutConfig(cuts=("pii",), tokenizer="bytes"))
    kept = (tmp_path / "out" / "kept.jsonl").read_text().splitlines()
    p = json.loads(kept[0])
    assert p["keep"] == [1, 2] and "<EMAIL>" in p["text"] and "a.b@example.com" not in p["text"]
    assert kept[1] == json.dumps(docs[1])
    assert res.pii_documents == 1 and res.pii_replacements == {"email": 1}
    assert res.tokens_before - res.tokens_after == len("a.b@example.com") - len("<EMAIL>")


def test_decontamination_is_reported_apart(tmp_path: Path) -> None:
    docs = synthetic_corpus(20, dup_every=100)
    ev = EvalIndex.build([str(docs[4]["text"])[:200]])
    src = write_jsonl(tmp_path / "in.jsonl", docs)
    res = run_pipeline(src, None, CutConfig(eval_index=ev, tokenizer="bytes"))
    d = res.to_dict()
    assert d["decontamination"]["enabled"] and d["decontamination"]["documents"] == 1
    assert "decontamination" not in d["removed_by_reason"]


def test_empty_and_unreadable_inputs_are_fatal(tmp_path: Path) -> None:
    (tmp_path / "e.jsonl").write_text("\n\n")
    with pytest.raises(DataInputError, match="empty input"):
        run_pipeline(tmp_path / "e.jsonl", None, CutConfig(tokenizer="bytes"))
    write_jsonl(tmp_path / "f.jsonl", [{"body": "x"}])
    with pytest.raises(DataInputError, match="--text-field"):
        run_pipeline(tmp_path / "f.jsonl", tmp_path / "out", CutConfig(tokenizer="bytes"))
    assert not (tmp_path / "out").exists()
