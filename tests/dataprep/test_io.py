"""Readers (JSONL plain/gz/zst, Parquet, text folders), binary detection and the atomic output folder."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from mlcost.dataprep import io


def _items(root: Path) -> list[io.RawItem]:
    files, _ = io.list_inputs(root)
    return list(io.iter_items(root, files))


def test_jsonl_lines_are_kept_byte_for_byte(tmp_path: Path) -> None:
    lines = [b'{"text": "a",   "x": 1}', b'{"x":2,"text":"b\\u00e9"}']
    (tmp_path / "a.jsonl").write_bytes(b"\r\n".join(lines) + b"\n\n")
    items = _items(tmp_path)
    assert [i.raw for i in items] == lines
    assert [(i.seq, i.source, i.line) for i in items] == [(0, "a.jsonl", 1), (1, "a.jsonl", 2)]


def test_gzip_zstd_parquet_and_text_are_read(tmp_path: Path) -> None:
    zstd = pytest.importorskip("zstandard")
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    row = json.dumps({"text": "hello"}).encode()
    with gzip.open(tmp_path / "a.jsonl.gz", "wb") as fh:
        fh.write(row + b"\n")
    (tmp_path / "b.jsonl.zst").write_bytes(zstd.ZstdCompressor().compress(row + b"\n"))
    pq.write_table(pa.table({"text": ["p1", "p2"], "id": [1, 2]}), tmp_path / "c.parquet")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.txt").write_text("plain text file")
    (tmp_path / "notes.csv").write_text("ignored")
    files, skipped = io.list_inputs(tmp_path)
    assert skipped == ["notes.csv"]
    items = list(io.iter_items(tmp_path, files))
    objs = [json.loads(i.raw) for i in items]
    assert objs == [
        {"text": "hello"},
        {"text": "hello"},
        {"text": "p1", "id": 1},
        {"text": "p2", "id": 2},
        {"id": "sub/d.txt", "text": "plain text file"},
    ]


def test_binary_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_bytes(b"\x00\x01\x02binary")
    with pytest.raises(io.DataInputError, match="binary data"):
        _items(tmp_path)


def test_missing_input_and_unknown_type(tmp_path: Path) -> None:
    with pytest.raises(io.DataInputError, match="no such file"):
        io.list_inputs(tmp_path / "nope")
    (tmp_path / "a.bin").write_bytes(b"x")
    with pytest.raises(io.DataInputError, match="unknown file type"):
        io.list_inputs(tmp_path / "a.bin")


def test_atomic_output_commit_and_abort(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    out = io.AtomicOutput(dest)
    out.open("kept.jsonl").write(b"x\n")
    assert not dest.exists()
    out.commit()
    assert (dest / "kept.jsonl").read_bytes() == b"x\n"
    with pytest.raises(io.DataInputError, match="already exists"):
        io.AtomicOutput(dest)
    aborted = io.AtomicOutput(dest, overwrite=True)
    aborted.open("kept.jsonl").write(b"y\n")
    aborted.abort()
    assert (dest / "kept.jsonl").read_bytes() == b"x\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_stale_partial_folder_of_a_dead_run_is_removed(tmp_path: Path) -> None:
    # A pid that cannot be alive (above the kernel's pid_max default range) stands for a SIGKILLed run.
    stale = tmp_path / ".out.partial-999999999"
    stale.mkdir()
    (stale / "kept.jsonl").write_text("half")
    live = tmp_path / f".out.partial-{os.getppid()}"
    live.mkdir()
    out = io.AtomicOutput(tmp_path / "out")
    assert not stale.exists() and live.exists()
    out.abort()
