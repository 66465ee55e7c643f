"""Decontamination: remove training documents that share a word n-gram with an evaluation set.

The evaluation documents' normalised word n-grams (13 by default, the length GPT-3 used: Brown et al. 2020,
"Language Models are Few-Shot Learners", Appendix C) are hashed into a set; a training document with at
least ``min_hits`` of them is removed and reported apart from the other cuts, with the number of shared
n-grams. Evaluation documents shorter than ``n`` words contribute one n-gram of all their words.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from mlcost.dataprep.normalize import normalize, words

DEFAULT_NGRAM = 13


def _h(gram: list[str]) -> int:
    return int.from_bytes(hashlib.blake2b(" ".join(gram).encode(), digest_size=8).digest(), "little")


def ngram_hashes(tokens: list[str], n: int) -> set[int]:
    """64-bit hashes of the word n-grams of ``tokens`` (one n-gram of all words when shorter than n)."""
    if len(tokens) < n:
        return {_h(tokens)} if tokens else set()
    return {_h(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


@dataclass(frozen=True)
class EvalIndex:
    """Hashed n-grams of an evaluation set.

    Attributes:
        n: words per n-gram.
        hashes: the n-gram hashes.
        documents: evaluation documents read.
        min_hits: shared n-grams that make a training document contaminated.
        short_lengths: lengths (in words) of evaluation documents shorter than ``n``.
    """

    n: int
    hashes: frozenset[int]
    documents: int
    min_hits: int = 1
    short_lengths: frozenset[int] = frozenset()

    @classmethod
    def build(cls, texts: Iterable[str], n: int = DEFAULT_NGRAM, min_hits: int = 1) -> EvalIndex:
        hashes: set[int] = set()
        short: set[int] = set()
        count = 0
        for text in texts:
            tokens = words(normalize(text))
            count += 1
            if 0 < len(tokens) < n:
                short.add(len(tokens))
            hashes |= ngram_hashes(tokens, n)
        return cls(n, frozenset(hashes), count, min_hits, frozenset(short))

    def hits(self, tokens: list[str]) -> int:
        """Number of distinct n-grams (and short-document grams) of ``tokens`` found in the evaluation set."""
        found = len(ngram_hashes(tokens, self.n) & self.hashes) if len(tokens) >= self.n else 0
        for k in self.short_lengths:
            if len(tokens) >= k:
                found += len({_h(tokens[i : i + k]) for i in range(len(tokens) - k + 1)} & self.hashes)
        return found
