"""Quality filters in the style of Gopher, C4 and FineWeb.

The thresholds are data (``data/quality.toml``, each row with its source); this module computes the
statistics they bound. Statistics are computed on the raw text (lines and paragraphs need the original
layout) with words as whitespace-separated tokens, as Gopher defines them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from mlcost.errors import SpecError

STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
BULLETS = ("•", "●", "○", "■", "□", "▪", "▫", "–", "-", "*", "·", "◦", "‣", "⁃")
ELLIPSES = ("...", "…")
TERMINAL_PUNCT = (".", "!", "?", '"', "'", "”", "’", ":", ";", ")")
SHORT_LINE_CHARS = 30
_PARA = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class QualityFilter:
    """One row of the quality table: keep a document when ``min <= statistic <= max``."""

    name: str
    statistic: str
    min: float | None
    max: float | None
    source: str

    def check(self, value: float) -> str | None:
        """None when the value passes, else the failed bound as text (``"< 50"``)."""
        if self.min is not None and value < self.min:
            return f"< {self.min:g}"
        if self.max is not None and value > self.max:
            return f"> {self.max:g}"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "statistic": self.statistic,
            "min": self.min,
            "max": self.max,
            "source": self.source,
        }


def load_filters(path: Path | None = None) -> list[QualityFilter]:
    """The filter table (the packaged one, or a user TOML file with the same schema)."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    text = (
        path.read_text()
        if path
        else resources.files("mlcost.dataprep").joinpath("data/quality.toml").read_text()
    )
    rows = tomllib.loads(text).get("filter", [])
    out = []
    for row in rows:
        if row.get("statistic") not in STATISTICS:
            raise SpecError(
                f"quality filter {row.get('name')!r}: unknown statistic {row.get('statistic')!r}",
                hint=f"known: {', '.join(sorted(STATISTICS))}",
            )
        out.append(
            QualityFilter(
                row["name"], row["statistic"], row.get("min"), row.get("max"), row.get("source", "")
            )
        )
    return out


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def _frac(count: float, total: float) -> float:
    return count / total if total else 0.0


def _dup_frac(items: list[str], by_chars: bool) -> float:
    counts = Counter(items)
    dup = [x for x in items if counts[x] > 1]
    if by_chars:
        return _frac(sum(len(x) for x in dup), sum(len(x) for x in items))
    return _frac(len(dup), len(items))


def _ngrams(words: list[str], n: int) -> list[tuple[str, ...]]:
    return list(zip(*(words[i:] for i in range(n)), strict=False))


def _top_ngram_char_frac(words: list[str], n: int, total_chars: int) -> float:
    """Characters covered by the most frequent n-gram (counted at each occurrence) / all word characters."""
    if len(words) < n:
        return 0.0
    gram, count = Counter(_ngrams(words, n)).most_common(1)[0]
    if count < 2:
        return 0.0
    return _frac(sum(len(w) for w in gram) * count, total_chars)


def _dup_ngram_char_frac(words: list[str], n: int, total_chars: int) -> float:
    """Characters of words inside any n-gram that occurs more than once / all word characters."""
    if len(words) < n:
        return 0.0
    grams = _ngrams(words, n)
    counts = Counter(grams)
    if len(counts) == len(grams):
        return 0.0
    covered = bytearray(len(words))
    for i, g in enumerate(grams):
        if counts[g] > 1:
            covered[i : i + n] = b"\x01" * n
    return _frac(sum(len(w) for w, c in zip(words, covered, strict=True) if c), total_chars)


class Stats:
    """Lazily computed statistics of one document (each computed once)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.words = text.split()
        self.lines = _lines(text)
        self.lower_words = [w.lower().strip(".,;:!?\"'()") for w in self.words]
        self.word_chars = sum(len(w) for w in self.lower_words)


STATISTICS: dict[str, Callable[[Stats], float]] = {
    "word_count": lambda s: float(len(s.words)),
    "mean_word_length": lambda s: _frac(sum(len(w) for w in s.words), len(s.words)),
    "symbol_word_ratio": lambda s: _frac(
        s.text.count("#") + sum(s.text.count(e) for e in ELLIPSES), len(s.words)
    ),
    "bullet_line_frac": lambda s: _frac(sum(ln.startswith(BULLETS) for ln in s.lines), len(s.lines)),
    "ellipsis_line_frac": lambda s: _frac(sum(ln.endswith(ELLIPSES) for ln in s.lines), len(s.lines)),
    "alpha_word_frac": lambda s: _frac(sum(any(c.isalpha() for c in w) for w in s.words), len(s.words)),
    "stop_word_count": lambda s: float(len(STOP_WORDS.intersection(s.lower_words))),
    "dup_line_frac": lambda s: _dup_frac(s.lines, by_chars=False),
    "dup_para_frac": lambda s: _dup_frac(
        [p.strip() for p in _PARA.split(s.text) if p.strip()], by_chars=False
    ),
    "dup_line_char_frac": lambda s: _dup_frac(s.lines, by_chars=True),
    "top_2gram_char_frac": lambda s: _top_ngram_char_frac(s.lower_words, 2, s.word_chars),
    "top_3gram_char_frac": lambda s: _top_ngram_char_frac(s.lower_words, 3, s.word_chars),
    "top_4gram_char_frac": lambda s: _top_ngram_char_frac(s.lower_words, 4, s.word_chars),
    "dup_5gram_char_frac": lambda s: _dup_ngram_char_frac(s.lower_words, 5, s.word_chars),
    "dup_10gram_char_frac": lambda s: _dup_ngram_char_frac(s.lower_words, 10, s.word_chars),
    "has_lorem_ipsum": lambda s: float("lorem ipsum" in s.text.lower()),
    "has_curly_bracket": lambda s: float("{" in s.text),
    "line_punct_frac": lambda s: _frac(sum(ln.endswith(TERMINAL_PUNCT) for ln in s.lines), len(s.lines)),
    "short_line_frac": lambda s: _frac(sum(len(ln) < SHORT_LINE_CHARS for ln in s.lines), len(s.lines)),
}


def first_failure(text: str, filters: list[QualityFilter]) -> tuple[str, float, str] | None:
    """``(filter name, measured value, failed bound)`` of the first filter the text fails, or None."""
    stats = Stats(text)
    cache: dict[str, float] = {}
    for f in filters:
        if f.statistic not in cache:
            cache[f.statistic] = STATISTICS[f.statistic](stats)
        bound = f.check(cache[f.statistic])
        if bound is not None:
            return f.name, cache[f.statistic], bound
    return None
