"""Orchestration: stream the corpus through the cuts, write kept and removed documents atomically, count
tokens, and (optionally) price the difference.

Per-document work (parsing, normalising, hashing, quality statistics, n-grams, MinHash signatures, token
counts, PII) runs in a ``multiprocessing`` pool on chunks of documents; the decisions that need global state
(the exact-hash index and the LSH index) are made in the main process in input order, so the output does not
depend on the number of workers. Order of the cuts for each document, first failure wins:
unreadable → quality → decontamination → exact duplicate → near duplicate → kept (PII redacted if asked).
Only kept documents enter the duplicate indexes, so every duplicate points at a kept representative.

Output folder (appears complete or not at all; see :class:`mlcost.dataprep.io.AtomicOutput`):
- ``kept.jsonl``: kept documents, each exactly the input JSON text (PII redaction, when on, rewrites the
  text field of the documents it changed and only those);
- ``removed.jsonl``: one object per removed or unreadable input: ``reason``, details, ``source``, ``line``,
  ``id`` and the original ``document`` (or ``raw_text`` when it could not be parsed);
- ``report.json``: the ``mlcost data --json`` object.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcost.dataprep import io
from mlcost.dataprep.decontam import EvalIndex
from mlcost.dataprep.exact import ExactIndex, text_hash
from mlcost.dataprep.minhash import NearDupConfig, NearDupIndex, signatures
from mlcost.dataprep.normalize import normalize, shingles, words
from mlcost.dataprep.quality import QualityFilter, first_failure, load_filters
from mlcost.dataprep.tokens import TokenCounter, TokenizerChoice, resolve_tokenizer
from mlcost.errors import SpecError

CUTS = ("exact", "near", "quality", "pii")
DEFAULT_CUTS = ("exact", "near", "quality")
REASONS = ("unreadable", "quality", "decontamination", "exact_duplicate", "near_duplicate")
#: Documents per work unit sent to a worker process.
CHUNK_DOCS = 256
#: Malformed lines listed one by one in the report (all are in removed.jsonl; the count is exact).
MAX_LISTED_ERRORS = 1000


@dataclass(frozen=True, kw_only=True)
class CutConfig:
    """What to cut and how.

    Attributes:
        cuts: subset of ``exact``, ``near``, ``quality``, ``pii`` (decontamination runs when ``eval_texts``
            is given).
        text_field, id_field: JSON keys of the text and of the document id (id falls back to source:line).
        on_error: ``skip`` (count, list and keep going) or ``fail`` (stop at the first bad line, exit 2).
        near: MinHash LSH settings.
        quality_file: a quality table replacing the packaged one.
        eval_index: hashed n-grams of the evaluation set for decontamination (None = off).
        tokenizer: ``minilm``, ``bytes`` or a tokenizer.json path.
        workers: processes for per-document work (1 = in this process).
    """

    cuts: tuple[str, ...] = DEFAULT_CUTS
    text_field: str = "text"
    id_field: str = "id"
    on_error: str = "skip"
    near: NearDupConfig = field(default_factory=NearDupConfig)
    quality_file: Path | None = None
    eval_index: EvalIndex | None = None
    tokenizer: str = "minilm"
    workers: int = 1

    def __post_init__(self) -> None:
        unknown = [c for c in self.cuts if c not in CUTS]
        if unknown:
            raise SpecError(f"--cuts: unknown cut {unknown[0]!r}", hint=f"choose from {', '.join(CUTS)}")
        if self.on_error not in ("skip", "fail"):
            raise SpecError(f"--on-error {self.on_error!r} is not known", hint="use skip or fail")
        if self.workers < 1:
            raise SpecError(f"--workers {self.workers} must be at least 1", hint="e.g. --workers 2")


@dataclass
class DataResult:
    """What a run read, removed and kept. Units in names; tokens are counts of ``tokenizer``'s tokens.

    ``removed`` maps a reason to {"documents", "tokens", "bytes"}; ``filters`` splits quality removals by
    filter name; ``errors`` lists unreadable lines (source, line, error) up to ``MAX_LISTED_ERRORS``.
    """

    input: str
    output: str | None
    files: int
    skipped_files: list[str]
    documents_read: int = 0
    documents_kept: int = 0
    bytes_read: int = 0
    bytes_kept: int = 0
    tokens_before: int = 0
    tokens_after: int = 0
    removed: dict[str, dict[str, int]] = field(
        default_factory=lambda: {r: {"documents": 0, "tokens": 0, "bytes": 0} for r in REASONS}
    )
    filters: dict[str, int] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    pii_documents: int = 0
    pii_replacements: dict[str, int] = field(default_factory=dict)
    exact_index_entries: int = 0
    near_index_entries: int = 0
    elapsed_s: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    price: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The documented ``mlcost data --json`` contract (docs/json.md, docs/data.md)."""
        removed_docs = sum(v["documents"] for r, v in self.removed.items() if r not in ("unreadable",))
        mb = self.bytes_read / 1e6
        return {
            "kind": "data",
            "input": self.input,
            "output": self.output,
            "files": self.files,
            "skipped_files": list(self.skipped_files),
            "documents": {
                "read": self.documents_read,
                "kept": self.documents_kept,
                "removed": removed_docs,
                "unreadable": self.removed["unreadable"]["documents"],
            },
            "tokens": {
                "before": self.tokens_before,
                "after": self.tokens_after,
                "removed": self.tokens_before - self.tokens_after,
                "tokenizer": self.settings.get("tokenizer"),
            },
            "bytes": {"read_bytes": self.bytes_read, "kept_bytes": self.bytes_kept},
            "removed_by_reason": {r: dict(v) for r, v in self.removed.items() if r != "decontamination"},
            "quality_filters": dict(self.filters),
            "decontamination": {
                "enabled": "decontamination" in self.settings,
                **dict(self.removed["decontamination"]),
            },
            "pii": {"documents_redacted": self.pii_documents, "replacements": dict(self.pii_replacements)},
            "errors": {"count": self.error_count, "listed": list(self.errors)},
            "index": {"exact_entries": self.exact_index_entries, "near_entries": self.near_index_entries},
            "throughput": {
                "elapsed_s": self.elapsed_s,
                "documents_per_s": self.documents_read / self.elapsed_s if self.elapsed_s else None,
                "mb_per_s": mb / self.elapsed_s if self.elapsed_s else None,
            },
            "settings": dict(self.settings),
            "price": self.price,
        }


# ---- worker side: per-document work ------------------------------------------------------------------

_W: dict[str, Any] = {}


@contextlib.contextmanager
def _default_sigterm() -> Iterator[None]:
    """Fork pool workers with SIGTERM at its default action. A worker that inherits a Python-level handler
    (the CLI's cleanup handler) and is terminated right after ``fork()`` loses the signal (CPython resets
    pending signals after fork) and then waits on the task queue forever, hanging ``Pool.terminate()``."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


#: The process that imported this module: a worker is any other process (``workers == 1`` runs in-process).
_MAIN_PID = os.getpid()


def _init_worker(cfg: CutConfig, tok: TokenizerChoice, filters: list[QualityFilter]) -> None:
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() and os.getpid() != _MAIN_PID:
        # A forked worker inherits the parent's SIGTERM/SIGINT handlers (the CLI turns SIGTERM into an exit
        # that cleans up the partial output); in a worker they would keep Pool.terminate() from ending it.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates the pool
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _W.update(cfg=cfg, counter=TokenCounter(tok), filters=filters)


@dataclass
class _Doc:
    seq: int
    source: str
    line: int
    raw: bytes
    error: str | None = None
    doc_id: str = ""
    digest: bytes = b""
    quality: tuple[str, float, str] | None = None
    decontam_hits: int = 0
    hashvalues: Any = None
    tokens: int = 0
    tokens_after: int = 0
    out: bytes | None = None
    pii: dict[str, int] | None = None


def _parse(item: io.RawItem, cfg: CutConfig) -> tuple[_Doc, str | None, str | None]:
    """The document, its text (None when unreadable) and its PII-redacted text (None when unchanged)."""
    doc = _Doc(item.seq, item.source, item.line, item.raw)
    try:
        text_json = item.raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        doc.error = f"not UTF-8 (invalid byte at offset {exc.start})"
        return doc, None, None
    try:
        obj = json.loads(text_json)
    except json.JSONDecodeError as exc:
        doc.error = f"malformed JSON ({exc.msg} at column {exc.colno})"
        return doc, None, None
    if not isinstance(obj, dict):
        doc.error = f"not a JSON object (a {type(obj).__name__})"
        return doc, None, None
    text = obj.get(cfg.text_field)
    if text is None:
        keys = ", ".join(list(obj)[:8])
        doc.error = f"missing text field {cfg.text_field!r} (fields: {keys})"
        return doc, None, None
    if not isinstance(text, str):
        doc.error = f"text field {cfg.text_field!r} is not a string (a {type(text).__name__})"
        return doc, None, None
    ident = obj.get(cfg.id_field)
    doc.doc_id = (
        str(ident)
        if isinstance(ident, (str, int)) and not isinstance(ident, bool)
        else f"{item.source}:{item.line}"
    )
    if "pii" in cfg.cuts:
        from mlcost.dataprep.pii import redact

        red, counts = redact(text)
        if counts:
            doc.pii = counts
            obj[cfg.text_field] = red
            doc.out = json.dumps(obj, ensure_ascii=False).encode()
            return doc, text, red
    return doc, text, None


def process_chunk(items: list[io.RawItem]) -> list[_Doc]:
    """Parse and measure a chunk of documents (runs in a worker)."""
    cfg: CutConfig = _W["cfg"]
    docs, texts, redacted, sh = [], [], [], []
    for item in items:
        doc, text, red = _parse(item, cfg)
        docs.append(doc)
        if text is None:
            continue
        texts.append((doc, text))
        redacted.append(red)
        norm = normalize(text)
        doc.digest = text_hash(norm)
        if "quality" in cfg.cuts:
            doc.quality = first_failure(text, _W["filters"])
        tokens = words(norm)
        if cfg.eval_index is not None:
            doc.decontam_hits = cfg.eval_index.hits(tokens)
        if "near" in cfg.cuts:
            sh.append((doc, shingles(tokens, cfg.near.shingle_size)))
    if sh:
        for (doc, _), hv in zip(sh, signatures([s for _, s in sh], cfg.near), strict=True):
            doc.hashvalues = hv
    counter: TokenCounter = _W["counter"]
    counts = counter.count([t for _, t in texts])
    changed = [(i, r) for i, r in enumerate(redacted) if r is not None]
    after = counter.count([r for _, r in changed]) if changed else []
    for (doc, _), n in zip(texts, counts, strict=True):
        doc.tokens = doc.tokens_after = n
    for (i, _), n in zip(changed, after, strict=True):
        texts[i][0].tokens_after = n
    return docs


def _chunks(items: Iterator[io.RawItem], size: int) -> Iterator[list[io.RawItem]]:
    buf: list[io.RawItem] = []
    for it in items:
        buf.append(it)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def _bounded_imap(pool: Any, chunks: Iterator[list[io.RawItem]], in_flight: int) -> Iterator[list[_Doc]]:
    """``pool.imap`` in order with at most ``in_flight`` chunks submitted and not yet consumed, so the reader
    never runs ahead of the workers (``Pool.imap`` itself drains its input eagerly, holding the whole corpus
    in memory)."""
    from collections import deque

    pending: deque[Any] = deque()
    for chunk in chunks:
        pending.append(pool.apply_async(process_chunk, (chunk,)))
        if len(pending) >= in_flight:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


# ---- main side: decisions in input order ---------------------------------------------------------------


def _removed_line(doc: _Doc, reason: str, detail: dict[str, Any]) -> bytes:
    head = {"reason": reason, **detail, "source": doc.source, "line": doc.line, "id": doc.doc_id or None}
    prefix = json.dumps(head, ensure_ascii=False)[:-1].encode()
    if doc.error is None:
        # The original JSON text, byte for byte, as the value of "document".
        return prefix + b', "document": ' + doc.raw + b"}\n"
    raw_text = doc.raw.decode("utf-8", errors="backslashreplace")
    return prefix + b", " + json.dumps({"raw_text": raw_text}, ensure_ascii=False)[1:].encode() + b"\n"


Progress = Callable[[int, int], None]


def run_pipeline(
    input_path: Path,
    output: Path | None,
    cfg: CutConfig,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
    finalize: Callable[[DataResult], None] | None = None,
) -> DataResult:
    """Run the cuts over ``input_path`` and write ``output`` atomically (None: measure only, write nothing).

    ``progress(documents_done, bytes_done)`` is called after each chunk. ``finalize(result)`` runs before the
    output is committed (the CLI prices the cut there, so report.json holds the price).
    """
    start = time.perf_counter()
    files, skipped = io.list_inputs(input_path)
    if not files:
        raise io.DataInputError(
            f"--input {input_path}: no JSONL, Parquet or .txt files found",
            hint="pass a file or a folder with .jsonl/.jsonl.gz/.jsonl.zst/.parquet/.txt files",
        )
    tok = resolve_tokenizer(cfg.tokenizer)
    filters = load_filters(cfg.quality_file) if "quality" in cfg.cuts else []
    result = DataResult(str(input_path), str(output) if output else None, len(files), skipped)
    result.settings = {
        "cuts": list(cfg.cuts),
        "text_field": cfg.text_field,
        "id_field": cfg.id_field,
        "on_error": cfg.on_error,
        "tokenizer": tok.label,
        "workers": cfg.workers,
    }
    if "near" in cfg.cuts:
        result.settings["near_duplicate"] = cfg.near.to_dict()
    if "quality" in cfg.cuts:
        result.settings["quality_filters"] = [f.to_dict() for f in filters]
    if cfg.eval_index is not None:
        ev = cfg.eval_index
        result.settings["decontamination"] = {
            "ngram": ev.n,
            "min_hits": ev.min_hits,
            "eval_documents": ev.documents,
        }

    out = io.AtomicOutput(output, overwrite=overwrite) if output is not None else None
    try:
        kept_fh = out.open("kept.jsonl") if out else None
        removed_fh = out.open("removed.jsonl") if out else None
        exact, near = ExactIndex(), (NearDupIndex(cfg.near) if "near" in cfg.cuts else None)
        chunks = _chunks(io.iter_items(input_path, files), CHUNK_DOCS)
        if cfg.workers == 1:
            _init_worker(cfg, tok, filters)
            results: Iterator[list[_Doc]] = (process_chunk(c) for c in chunks)
            _consume(results, cfg, result, exact, near, kept_fh, removed_fh, progress)
        else:
            import multiprocessing as mp

            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            with _default_sigterm():  # forked workers start with SIGTERM at its default action
                pool = ctx.Pool(cfg.workers, initializer=_init_worker, initargs=(cfg, tok, filters))
            # close() + join(), never terminate(): at most 2·workers + 2 chunks are in flight, so ending the
            # pool waits briefly; a SIGTERM sent by terminate() right after fork() can be lost and hang it.
            try:
                _consume(
                    _bounded_imap(pool, chunks, 2 * cfg.workers + 2),
                    cfg,
                    result,
                    exact,
                    near,
                    kept_fh,
                    removed_fh,
                    progress,
                )
            finally:
                pool.close()
                pool.join()
        if result.documents_read == 0:
            raise io.DataInputError(
                f"--input {input_path}: empty input (no documents)", hint="check the path"
            )
        if result.documents_read == result.removed["unreadable"]["documents"]:
            first = result.errors[0]["error"] if result.errors else "unreadable"
            raise io.DataInputError(
                f"--input {input_path}: no readable document ({result.error_count} unreadable; first: {first})",
                hint=f"check --text-field (now {cfg.text_field!r}) and the file format",
            )
        result.exact_index_entries = len(exact)
        result.near_index_entries = near.size if near else 0
        result.elapsed_s = time.perf_counter() - start
        if finalize is not None:
            finalize(result)
        if out is not None:
            import json

            report = json.dumps(result.to_dict(), indent=2, allow_nan=False, default=float)
            out.open("report.json").write(report.encode() + b"\n")
            out.commit()
    except BaseException:
        if out is not None:
            out.abort()
        raise
    return result


def _consume(
    results: Iterator[list[_Doc]],
    cfg: CutConfig,
    result: DataResult,
    exact: ExactIndex,
    near: NearDupIndex | None,
    kept_fh: Any,
    removed_fh: Any,
    progress: Progress | None,
) -> None:
    def remove(doc: _Doc, reason: str, detail: dict[str, Any]) -> None:
        bucket = result.removed[reason]
        bucket["documents"] += 1
        bucket["tokens"] += doc.tokens
        bucket["bytes"] += len(doc.raw)
        if removed_fh is not None:
            removed_fh.write(_removed_line(doc, reason, detail))

    for chunk in results:
        for doc in chunk:
            result.documents_read += 1
            result.bytes_read += len(doc.raw)
            if doc.error is not None:
                result.error_count += 1
                if len(result.errors) < MAX_LISTED_ERRORS:
                    result.errors.append({"source": doc.source, "line": doc.line, "error": doc.error})
                if cfg.on_error == "fail":
                    raise io.DataInputError(
                        f"--input: {doc.source} line {doc.line}: {doc.error}",
                        hint="fix the line, or pass --on-error skip to list and skip bad lines",
                    )
                remove(doc, "unreadable", {"error": doc.error})
                continue
            result.tokens_before += doc.tokens
            if doc.quality is not None:
                name, value, bound = doc.quality
                result.filters[name] = result.filters.get(name, 0) + 1
                remove(doc, "quality", {"filter": name, "value": value, "threshold": bound})
                continue
            if (
                doc.decontam_hits
                and cfg.eval_index is not None
                and doc.decontam_hits >= cfg.eval_index.min_hits
            ):
                remove(
                    doc, "decontamination", {"shared_ngrams": doc.decontam_hits, "ngram": cfg.eval_index.n}
                )
                continue
            rep = exact.lookup(doc.digest) if "exact" in cfg.cuts else None
            if rep is not None:
                remove(
                    doc, "exact_duplicate", {"cluster": "exact-" + doc.digest.hex(), "representative": rep}
                )
                continue
            if near is not None:
                hit = near.check_add(doc.hashvalues, doc.seq, doc.doc_id)
                if hit is not None:
                    remove(doc, "near_duplicate", {"cluster": f"near-{hit[0]}", "representative": hit[1]})
                    continue
            if "exact" in cfg.cuts:
                exact.add(doc.digest, doc.doc_id)
            result.documents_kept += 1
            result.tokens_after += doc.tokens_after
            line = doc.out if doc.out is not None else doc.raw
            result.bytes_kept += len(line)
            if doc.pii:
                result.pii_documents += 1
                for k, v in doc.pii.items():
                    result.pii_replacements[k] = result.pii_replacements.get(k, 0) + v
            if kept_fh is not None:
                kept_fh.write(line + b"\n")
        if progress is not None:
            progress(result.documents_read, result.bytes_read)
