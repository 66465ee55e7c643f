"""Training data for measurement runs: synthetic random tokens (default) or a real text file read with a
byte-level tokenizer (256 byte values + 3 specials, nothing to download).

Both are map-style datasets of ``seq_len``-token windows, so a ``torch.utils.data.DataLoader`` with
``num_workers`` workers (the ``workers=N`` strategy) can load them. Each item is a ``LongTensor`` of
``seq_len`` token ids; the labels are the ids themselves (causal LMs shift inside the model).
"""

from __future__ import annotations

import bz2
import gzip
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcost.errors import SpecError, require

if TYPE_CHECKING:  # pragma: no cover
    import torch


class ByteTokenizer:
    """UTF-8 bytes as token ids 0–255, plus ``<bos>`` = 256, ``<eos>`` = 257, ``<pad>`` = 258."""

    bos_id = 256
    eos_id = 257
    pad_id = 258
    vocab_size = 259

    def encode(self, text: str, *, add_special: bool = True) -> list[int]:
        ids = list(text.encode("utf-8", errors="replace"))
        return [self.bos_id, *ids, self.eos_id] if add_special else ids

    def decode(self, ids: list[int]) -> str:
        return bytes(i for i in ids if 0 <= i < 256).decode("utf-8", errors="replace")


def read_text(path: str | os.PathLike[str]) -> str:
    """Read a text file (``.bz2`` and ``.gz`` are decompressed)."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"data file {str(p)!r} does not exist", hint="give --data a path to a text file")
    opener: Any = bz2.open if p.suffix == ".bz2" else gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt", encoding="utf-8", errors="replace") as fh:
        return str(fh.read())


class SyntheticTokens:
    """Uniformly random token ids; item ``i`` is the same on every call and in every worker.

    Attributes:
        vocab_size: ids are drawn from [0, vocab_size).
        seq_len: tokens per item.
        length: items in one epoch (indices wrap).
        seed: base seed.
    """

    source = "synthetic"

    def __init__(self, vocab_size: int, seq_len: int, *, length: int = 1_000_000, seed: int = 0) -> None:
        self.vocab_size = vocab_size
        self.seq_len = seq_len
        self.length = length
        self.seed = seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        torch = require("torch", "mlcost measure", extra="measure")
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        return torch.randint(0, self.vocab_size, (self.seq_len,), generator=gen)  # type: ignore[no-any-return]


class TextTokens:
    """Consecutive ``seq_len``-token windows of a text, tokenized byte by byte; wraps around at the end.

    Attributes:
        path: the file read (or ``None`` for a text given directly).
        n_tokens: tokens in the text. Units: count.
    """

    source = "text"

    def __init__(self, text: str, seq_len: int, *, path: str | None = None) -> None:
        torch = require("torch", "mlcost measure", extra="measure")
        self.tokenizer = ByteTokenizer()
        ids: list[int] = []
        for doc in text.split("\n\n"):
            if doc.strip():
                ids.extend(self.tokenizer.encode(doc))
        if len(ids) < seq_len + 1:
            raise SpecError(
                f"the text has {len(ids)} byte tokens, fewer than one sequence of {seq_len}",
                hint="use a longer text file or a shorter --seq-len",
            )
        self.ids = torch.tensor(ids, dtype=torch.long)
        self.seq_len = seq_len
        self.path = path
        self.n_tokens = len(ids)
        self.vocab_size = ByteTokenizer.vocab_size

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], seq_len: int) -> TextTokens:
        return cls(read_text(path), seq_len, path=str(path))

    def __len__(self) -> int:
        return max(1, (self.n_tokens - 1) // self.seq_len)

    def __getitem__(self, index: int) -> torch.Tensor:
        start = (index % len(self)) * self.seq_len
        return self.ids[start : start + self.seq_len]


def make_dataset(
    *, vocab_size: int, seq_len: int, path: str | os.PathLike[str] | None = None, seed: int = 0
) -> SyntheticTokens | TextTokens:
    """Synthetic tokens, or the text file at ``path`` (the model's vocabulary must hold 259 byte ids)."""
    if path is None:
        return SyntheticTokens(vocab_size, seq_len, seed=seed)
    if vocab_size < ByteTokenizer.vocab_size:
        raise SpecError(
            f"text data uses a byte tokenizer of {ByteTokenizer.vocab_size} ids, but the model's vocabulary "
            f"has {vocab_size}",
            hint=f"use --vocab {ByteTokenizer.vocab_size} or more, or drop --data for synthetic tokens",
        )
    return TextTokens.from_file(path, seq_len)


def make_loader(
    dataset: SyntheticTokens | TextTokens,
    *,
    micro_batch: int,
    workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> Iterator[torch.Tensor]:
    """An endless iterator of ``(micro_batch, seq_len)`` LongTensors; each data-parallel rank reads its own
    shard (items ``rank, rank + world_size, ...``)."""
    torch = require("torch", "mlcost measure", extra="measure")
    from torch.utils.data import DataLoader, Subset

    indices = range(rank, len(dataset), world_size)
    loader: Any = DataLoader(
        Subset(dataset, indices),  # type: ignore[arg-type]
        batch_size=micro_batch,
        shuffle=False,
        drop_last=True,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
    )
    del torch

    def _endless() -> Iterator[Any]:
        while True:
            yielded = False
            for batch in loader:
                yielded = True
                yield batch
            if not yielded:
                raise SpecError(
                    f"the data has fewer than one micro-batch of {micro_batch} sequences per rank",
                    hint="use a longer text, a smaller --micro-batch or a shorter --seq-len",
                )

    return _endless()


_WORDS = [
    "the",
    "cost",
    "of",
    "training",
    "a",
    "model",
    "depends",
    "on",
    "the",
    "tokens",
    "it",
    "sees",
    "the",
    "size",
    "of",
    "each",
    "layer",
    "and",
    "the",
    "speed",
    "of",
    "the",
    "hardware",
    "that",
    "runs",
    "it",
    "energy",
    "is",
    "measured",
    "in",
    "joules",
    "money",
    "in",
    "dollars",
    "and",
    "carbon",
    "in",
    "kilograms",
    "a",
    "careful",
    "engineer",
    "measures",
    "before",
    "and",
    "after",
    "each",
    "change",
    "and",
    "keeps",
    "only",
    "what",
    "pays",
]


def generate_text(n_words: int = 20_000, *, seed: int = 0) -> str:
    """Deterministic English-like text (paragraphs of random words) for tests without a corpus."""
    rng = random.Random(seed)
    paragraphs = []
    for _ in range(max(1, n_words // 100)):
        sentence = " ".join(rng.choice(_WORDS) for _ in range(100))
        paragraphs.append(sentence.capitalize() + ".")
    return "\n\n".join(paragraphs)


def gensim_text_path() -> Path | None:
    """``lee_background.cor`` (300 news documents) from gensim's test data if gensim is installed."""
    import importlib.util

    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        path = Path(base) / "test" / "test_data" / "lee_background.cor"
        if path.is_file():
            return path
    return None
