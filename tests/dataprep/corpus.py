"""Small corpora for the dataprep tests: synthetic documents and gensim's offline news texts."""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = [
    "market",
    "river",
    "energy",
    "school",
    "garden",
    "music",
    "window",
    "history",
    "doctor",
    "paper",
    "village",
    "system",
    "morning",
    "winter",
    "science",
    "letter",
    "number",
    "island",
    "engine",
    "voice",
    "family",
    "travel",
    "mountain",
    "picture",
    "language",
    "summer",
    "station",
    "country",
    "teacher",
    "product",
    "animal",
    "company",
    "history",
    "people",
    "between",
    "government",
    "through",
    "because",
    "against",
]
STOP = ["the", "and", "of", "to", "with", "that", "have", "be"]


def synthetic_text(rng: random.Random, n_words: int = 120) -> str:
    """Prose-like text that passes the Gopher/C4/FineWeb filters: sentences of random words and stop words."""
    sentences = []
    while sum(len(s.split()) for s in sentences) < n_words:
        k = rng.randint(8, 16)
        ws = [rng.choice(WORDS) if rng.random() < 0.7 else rng.choice(STOP) for _ in range(k)]
        sentences.append(" ".join(ws).capitalize() + ".")
    return " ".join(sentences)


def write_jsonl(path: Path, docs: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path


def synthetic_corpus(n: int, seed: int = 0, dup_every: int = 10) -> list[dict[str, object]]:
    """``n`` unique documents plus an exact copy of every ``dup_every``-th one (ids ``u<i>`` and ``c<i>``)."""
    rng = random.Random(seed)
    docs: list[dict[str, object]] = []
    for i in range(n):
        docs.append({"id": f"u{i}", "text": synthetic_text(rng), "meta": {"n": i}})
        if i % dup_every == dup_every - 1:
            docs.append({"id": f"c{i}", "text": docs[-1]["text"], "meta": "copy"})
    return docs


def lee_texts() -> list[str]:
    """The 300 news documents of gensim's lee_background.cor (skip the test when gensim is absent)."""
    import importlib.util

    import pytest

    spec = importlib.util.find_spec("gensim")  # located, not imported (importing gensim takes seconds)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("gensim (offline test texts) not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "test" / "test_data" / "lee_background.cor"
    return [ln.strip() for ln in path.read_text(encoding="latin-1").splitlines() if ln.strip()]
