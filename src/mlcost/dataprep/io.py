"""Readers and the atomic writer.

Input is streamed one line (or row, or file) at a time, so a corpus larger than memory works:
- JSONL files (``.jsonl``, ``.json``, ``.ndjson``), optionally gzip (``.gz``) or zstd (``.zst``) compressed;
- Parquet files (``.parquet``), read in record batches with pyarrow;
- plain-text files (``.txt``): one document per file.

Every input item becomes a :class:`RawItem` whose ``raw`` bytes are the JSON text of the document: for JSONL
the line exactly as read (so a kept document is written back byte-for-byte), for Parquet a row serialised
with ``json.dumps``, for text files ``{"id": <relative path>, "text": <content>}``.

The output is written into a temporary directory next to the destination and renamed into place at the end
(:class:`AtomicOutput`), so a run killed at any moment leaves either no output or a complete one.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mlcost.errors import MlcostError, require

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
COMPRESSED_SUFFIXES = (".gz", ".zst")
TEXT_SUFFIXES = (".txt",)
PARQUET_SUFFIXES = (".parquet",)
#: Bytes read from the start of a file to tell binary data (a NUL byte) from text.
SNIFF_BYTES = 8192


class DataInputError(MlcostError):
    """The corpus cannot be read as given (missing, binary, empty, wrong text field, malformed line)."""


@dataclass(frozen=True)
class RawItem:
    """One input document before parsing.

    Attributes:
        seq: position in the whole input (0-based), the order of every decision.
        source: file path relative to the input root.
        line: 1-based line number in a JSONL file, row number in Parquet, 1 for a text file.
        raw: the document's JSON text as bytes (a JSONL line without its line ending).
    """

    seq: int
    source: str
    line: int
    raw: bytes


def _kind(path: Path) -> str | None:
    name = path.name.lower()
    for comp in COMPRESSED_SUFFIXES:
        if name.endswith(comp):
            name = name[: -len(comp)]
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(TEXT_SUFFIXES):
        return "text"
    return None


def list_inputs(root: Path, flag: str = "--input") -> tuple[list[Path], list[str]]:
    """The readable files under ``root`` (sorted) and the names of files skipped for an unknown suffix."""
    if not root.exists():
        raise DataInputError(
            f"{flag} {root}: no such file or directory", hint="pass a JSONL/Parquet/.txt file or a folder"
        )
    if root.is_file():
        if _kind(root) is None:
            raise DataInputError(
                f"{flag} {root}: unknown file type",
                hint="use .jsonl/.json (optionally .gz/.zst), .parquet or .txt",
            )
        return [root], []
    files: list[Path] = []
    skipped: list[Path] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        (files if _kind(path) else skipped).append(path)
    return files, [str(p.relative_to(root)) for p in skipped]


def _open_binary(path: Path) -> IO[bytes]:
    name = path.name.lower()
    if name.endswith(".gz"):
        import gzip

        return gzip.open(path, "rb")  # type: ignore[return-value]
    if name.endswith(".zst"):
        zstd = require("zstandard", "reading .zst input", extra="data")
        fh = open(path, "rb")  # noqa: SIM115 - closed by the stream reader (closefd)
        import io as _io

        return _io.BufferedReader(zstd.ZstdDecompressor().stream_reader(fh, closefd=True))
    return open(path, "rb")


def check_not_binary(path: Path, flag: str = "--input") -> None:
    """Raise when the (decompressed) start of ``path`` contains a NUL byte: binary data, not text."""
    try:
        with _open_binary(path) as fh:
            head = fh.read(SNIFF_BYTES)
    except (OSError, EOFError) as exc:
        raise DataInputError(
            f"{flag} {path}: cannot read ({exc})", hint="is the file truncated or not really compressed?"
        ) from None
    except Exception as exc:  # zstandard raises its own ZstdError
        raise DataInputError(f"{flag} {path}: cannot decompress ({exc})", hint="check the file") from None
    if b"\x00" in head:
        raise DataInputError(
            f"{flag} {path}: binary data (NUL bytes), not text",
            hint="pass JSONL, Parquet or .txt files; remove the binary file from the folder",
        )


def _iter_jsonl(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        with _open_binary(path) as fh:
            for n, line in enumerate(fh, start=1):
                line = line.rstrip(b"\r\n")
                if line.strip():
                    yield n, line
    except (OSError, EOFError) as exc:
        raise DataInputError(f"--input {path}: read failed ({exc})", hint="is the file truncated?") from None


def _iter_parquet(path: Path, batch_rows: int = 1024) -> Iterator[tuple[int, bytes]]:
    pq = require("pyarrow.parquet", "reading Parquet input", extra="data")
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:
        raise DataInputError(
            f"--input {path}: not a readable Parquet file ({exc})", hint="check the file"
        ) from None
    n = 0
    for batch in pf.iter_batches(batch_size=batch_rows):
        for row in batch.to_pylist():
            n += 1
            yield n, json.dumps(row, ensure_ascii=False, default=str).encode()


def _iter_text(path: Path, root: Path) -> Iterator[tuple[int, bytes]]:
    data = path.read_bytes()
    rel = str(path.relative_to(root)) if path != root else path.name
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # Not UTF-8: pass the bytes on undecodable so the worker reports it (never silently dropped).
        yield 1, data
        return
    # An empty file is still a document (the cuts decide about it; nothing is dropped unseen).
    yield 1, json.dumps({"id": rel, "text": text}, ensure_ascii=False).encode()


def iter_items(root: Path, files: list[Path]) -> Iterator[RawItem]:
    """Stream every document of ``files`` (found under ``root``) in a fixed order."""
    seq = 0
    base = root if root.is_dir() else root.parent
    for path in files:
        kind = _kind(path)
        source = str(path.relative_to(base))
        if kind == "jsonl":
            check_not_binary(path)
            rows: Iterator[tuple[int, bytes]] = _iter_jsonl(path)
        elif kind == "parquet":
            rows = _iter_parquet(path)
        else:
            check_not_binary(path)
            rows = _iter_text(path, base)
        for line, raw in rows:
            yield RawItem(seq, source, line, raw)
            seq += 1


def input_bytes(files: list[Path]) -> int:
    """Total size on disk of the input files (for progress and MB/s). Units: bytes."""
    return sum(p.stat().st_size for p in files)


class AtomicOutput:
    """An output folder that appears complete or not at all.

    Files are written into ``.<name>.partial-<pid>`` next to ``dest``; :meth:`commit` renames it to ``dest``
    (``os.replace`` of a directory is atomic on POSIX). Leftover partial folders of dead processes (a run
    killed with SIGKILL) are removed when the next run starts, so a rerun restarts cleanly.
    """

    def __init__(self, dest: Path, *, overwrite: bool = False, flag: str = "--output") -> None:
        self.dest = dest.resolve()
        if self.dest.exists() and not overwrite:
            raise DataInputError(
                f"{flag} {dest} already exists", hint="choose a new folder or pass --overwrite"
            )
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self._clean_stale()
        self.tmp = self.dest.parent / f".{self.dest.name}.partial-{os.getpid()}"
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir()
        self.overwrite = overwrite
        self._open: list[IO[Any]] = []

    def _clean_stale(self) -> None:
        for stale in self.dest.parent.glob(f".{self.dest.name}.partial-*"):
            pid = stale.name.rsplit("-", 1)[-1]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)

    def open(self, name: str) -> IO[bytes]:
        """A binary file inside the temporary folder (closed by commit/abort)."""
        fh = open(self.tmp / name, "wb")  # noqa: SIM115
        self._open.append(fh)
        return fh

    def commit(self) -> Path:
        """Flush, fsync and rename the temporary folder to the destination."""
        for fh in self._open:
            if not fh.closed:
                fh.flush()
                os.fsync(fh.fileno())
                fh.close()
        self._open.clear()
        old = None
        if self.dest.exists() and self.overwrite:
            old = self.dest.parent / f".{self.dest.name}.old-{os.getpid()}"
            os.replace(self.dest, old)
        os.replace(self.tmp, self.dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.dest

    def abort(self) -> None:
        """Close and delete the temporary folder (nothing half-written stays on disk)."""
        for fh in self._open:
            fh.close()
        self._open.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
