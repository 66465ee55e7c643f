"""Text normalisation shared by exact and near-duplicate detection.

``normalize`` applies Unicode NFKC, case folding and whitespace collapsing, so two documents that differ
only in case, Unicode presentation forms or spacing hash to the same value. ``words`` splits normalised
text into word tokens (``\\w+`` runs; punctuation is dropped), the unit of MinHash shingles, quality
statistics and decontamination n-grams.
"""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+")


def normalize(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed to single spaces, stripped."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def words(normalized: str) -> list[str]:
    """Word tokens of already-normalised text."""
    return _WORD.findall(normalized)


def shingles(tokens: list[str], size: int) -> set[bytes]:
    """The set of word ``size``-grams (joined with a space, UTF-8). A document shorter than ``size`` words
    gives one shingle of all its words, so short documents still have a signature."""
    if len(tokens) < size:
        return {" ".join(tokens).encode()} if tokens else set()
    return {" ".join(tokens[i : i + size]).encode() for i in range(len(tokens) - size + 1)}
