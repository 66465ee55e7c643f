"""Corpora for the data benchmarks, built from gensim's offline test texts (installed from PyPI):
lee_background.cor (300 news documents), the shortened English Wikipedia dump (articles as plain text via
gensim's own wiki markup filter) and pang_lee_polarity.cor (200 movie-review sentences).

The base texts are first made duplicate-free by brute force (every pair compared on exact word 3-gram
Jaccard; a text with J >= 0.5 to an earlier one is dropped): the news file itself contains repeated
articles, which would otherwise count as false positives. Injected copies then have known truth.
"""

from __future__ import annotations

import bz2
import itertools
import json
import random
from pathlib import Path

from mlcost.dataprep.normalize import normalize, shingles, words

EDIT_RATES = (0.01, 0.03, 0.05, 0.10)


def _gensim_data() -> Path:
    import gensim

    return Path(gensim.__file__).parent / "test" / "test_data"


def load_base_texts(max_wiki_words: int = 2000) -> list[tuple[str, str]]:
    """(source, text) of the raw offline texts."""
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    d = _gensim_data()
    out: list[tuple[str, str]] = []
    for ln in (d / "lee_background.cor").read_text(encoding="latin-1").splitlines():
        if ln.strip():
            out.append(("lee", ln.strip()))
    wiki = d / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
    with bz2.open(wiki) as fh:
        for _title, text, _pid in extract_pages(fh):
            plain = " ".join(filter_wiki(text).split())
            if len(plain.split()) >= 50 and not plain.lower().startswith("#redirect"):
                out.append(("wiki", " ".join(plain.split()[:max_wiki_words])))
    for ln in (d / "pang_lee_polarity.cor").read_text(encoding="latin-1").splitlines():
        if ln.strip():
            out.append(("pang_lee", ln.strip()))
    return out


def unique_base(texts: list[tuple[str, str]], threshold: float = 0.5) -> tuple[list[tuple[str, str]], int]:
    """Drop texts with exact 3-gram Jaccard >= threshold to an earlier kept text (brute force, no MinHash)."""
    kept: list[tuple[str, str]] = []
    sets: list[set[bytes]] = []
    dropped = 0
    for src, text in texts:
        s = shingles(words(normalize(text)), 3)
        if any(len(s & t) / max(len(s | t), 1) >= threshold for t in sets):
            dropped += 1
            continue
        kept.append((src, text))
        sets.append(s)
    return kept, dropped


def edit(text: str, rate: float, vocab: list[str], rng: random.Random) -> str:
    """Each whitespace token is, with probability ``rate``, substituted, deleted, or followed by an inserted
    word (one third each); inserted/substituted words come from the corpus vocabulary."""
    out: list[str] = []
    for w in text.split():
        r = rng.random()
        if r < rate / 3:
            out.append(rng.choice(vocab))
        elif r < 2 * rate / 3:
            continue
        elif r < rate:
            out += [w, rng.choice(vocab)]
        else:
            out.append(w)
    return " ".join(out)


def dedup_corpus(
    base: list[tuple[str, str]], seed: int = 0, exact_share: float = 0.15, near_share: float = 0.10
) -> list[dict[str, object]]:
    """Base documents (shuffled) followed by the injected copies (shuffled): a copy appears after its original,
    as in a crawl where the copy is found later. Each document has ``id``, ``text``, ``source``,
    ``cluster`` (the base document's index) and ``kind``: ``original``, ``exact``, ``exact_case`` (case and
    spacing changed) or ``near_<rate>``."""
    rng = random.Random(seed)
    vocab = sorted({w for _, t in base for w in t.split()})
    originals: list[dict[str, object]] = [
        {"id": f"b{i}", "text": t, "source": s, "cluster": i, "kind": "original"}
        for i, (s, t) in enumerate(base)
    ]
    docs: list[dict[str, object]] = []
    n = len(base)
    for k, i in enumerate(rng.sample(range(n), int(exact_share * n))):
        text = base[i][1]
        if k % 2:
            kind, text = "exact_case", "  " + text.upper().replace(" ", "   ")
        else:
            kind = "exact"
        docs.append({"id": f"x{k}", "text": text, "source": base[i][0], "cluster": i, "kind": kind})
    for rate in EDIT_RATES:
        for k, i in enumerate(rng.sample(range(n), int(near_share * n))):
            docs.append(
                {
                    "id": f"n{int(rate * 100)}_{k}",
                    "text": edit(base[i][1], rate, vocab, rng),
                    "source": base[i][0],
                    "cluster": i,
                    "kind": f"near_{int(rate * 100)}pct",
                }
            )
    rng.shuffle(originals)
    rng.shuffle(docs)
    return originals + docs


def truth(docs: list[dict[str, object]]) -> set[str]:
    """Ids that should be removed: every member of a cluster after its first in stream order (here: exactly
    the injected copies)."""
    seen: set[object] = set()
    dup: set[str] = set()
    for d in docs:
        if d["cluster"] in seen:
            dup.add(str(d["id"]))
        seen.add(d["cluster"])
    return dup


def write_jsonl(path: Path, docs: list[dict[str, object]]) -> Path:
    with path.open("w") as fh:
        for d in docs:
            fh.write(json.dumps(d, ensure_ascii=False) + "\n")
    return path


class Markov:
    """A word bigram model of the base texts, to generate any number of distinct, text-like documents."""

    def __init__(self, texts: list[str], seed: int = 0) -> None:
        self.next: dict[str, list[str]] = {}
        for t in texts:
            ws = t.split()
            for a, b in itertools.pairwise(ws):
                self.next.setdefault(a, []).append(b)
        self.starts = [t.split()[0] for t in texts if t.split()]
        self.rng = random.Random(seed)

    def document(self, n_words: int) -> str:
        w = self.rng.choice(self.starts)
        out = [w]
        for _ in range(n_words - 1):
            nxt = self.next.get(w)
            w = self.rng.choice(nxt) if nxt else self.rng.choice(self.starts)
            out.append(w)
        return " ".join(out).rstrip(".,;:") + "."
