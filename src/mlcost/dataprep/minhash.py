"""Near-duplicate deduplication: MinHash signatures of word n-gram shingles and an LSH index (datasketch).

Why datasketch: it is the well-kept reference implementation of MinHash and MinHash LSH in Python
(``MinHash.bulk`` hashes many documents in one vectorised numpy call, about 9× faster than per-document
updates on this machine), it runs in-process with no cluster or temporary disk stages, and it lets us keep
the streaming one-pass design (query, then insert) that writes each decision as soon as it is made.
datatrove's MinHash blocks are a four-stage, disk-backed pipeline built for many machines (signatures,
buckets, clusters, filter); docs/data.md shows how to run that on Slurm/Ray for corpora beyond one machine.

Defaults (stated in every report): 128 permutations, word 3-gram shingles, Jaccard threshold 0.5, LSH
bands × rows chosen by datasketch's optimiser for that threshold (25 bands × 5 rows). These are looser than
Lee et al. 2021 (5-grams, 0.8) on purpose: at 5% token edits a 5-gram set keeps a Jaccard of only ~0.7 in
the mean and under 0.4 for a tenth of documents (measured on gensim's news texts; docs/data.md), so a
5-gram/0.8 index misses most edited copies. benchmarks/data_dedup_quality.py measures precision and recall.

The first document of a cluster is kept (the representative); later ones are removed with the cluster id
and the representative's id. Removed documents are not inserted, so the index holds kept documents only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlcost.errors import SpecError, require


@dataclass(frozen=True, kw_only=True)
class NearDupConfig:
    """MinHash LSH settings.

    Attributes:
        num_perm: permutations (hash functions) per signature.
        shingle_size: words per shingle.
        threshold: Jaccard similarity above which two documents count as near-duplicates.
        bands, rows: LSH banding (bands × rows ≤ num_perm); None = datasketch's optimum for ``threshold``.
        seed: MinHash permutation seed (all workers use the same).
    """

    num_perm: int = 128
    shingle_size: int = 3
    threshold: float = 0.5
    bands: int | None = None
    rows: int | None = None
    seed: int = 1
    _resolved: tuple[int, int] = field(default=(0, 0), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise SpecError(f"--near-threshold {self.threshold} is outside (0, 1)", hint="e.g. 0.5")
        if self.num_perm < 8:
            raise SpecError(f"--num-perm {self.num_perm} is too small", hint="use 64-256")
        if self.shingle_size < 1:
            raise SpecError(f"--shingle-size {self.shingle_size} must be >= 1", hint="e.g. 3")
        if (self.bands is None) != (self.rows is None):
            raise SpecError("--bands and --rows go together", hint="give both or neither")
        if self.bands is not None and self.rows is not None:
            if self.bands * self.rows > self.num_perm:
                raise SpecError(
                    f"--bands × --rows = {self.bands * self.rows} exceeds --num-perm {self.num_perm}",
                    hint="bands × rows must be <= num_perm",
                )
            object.__setattr__(self, "_resolved", (self.bands, self.rows))
        else:
            ds = require("datasketch", "near-duplicate detection", extra="data")
            lsh = ds.MinHashLSH(threshold=self.threshold, num_perm=self.num_perm)
            object.__setattr__(self, "_resolved", (lsh.b, lsh.r))

    @property
    def banding(self) -> tuple[int, int]:
        """(bands, rows) actually used."""
        return self._resolved

    def candidate_probability(self, jaccard: float) -> float:
        """Probability that two documents with this Jaccard similarity share a band: 1 - (1 - J^r)^b."""
        b, r = self.banding
        return float(1.0 - (1.0 - jaccard**r) ** b)

    def to_dict(self) -> dict[str, Any]:
        b, r = self.banding
        return {
            "library": "datasketch",
            "num_perm": self.num_perm,
            "shingle": f"word {self.shingle_size}-grams",
            "shingle_size": self.shingle_size,
            "threshold": self.threshold,
            "bands": b,
            "rows": r,
            "seed": self.seed,
        }


def signatures(shingle_sets: list[set[bytes]], cfg: NearDupConfig) -> list[np.ndarray]:
    """MinHash signatures (uint hash values) of many shingle sets in one ``MinHash.bulk`` call."""
    ds = require("datasketch", "near-duplicate detection", extra="data")
    mhs = ds.MinHash.bulk(shingle_sets, num_perm=cfg.num_perm, seed=cfg.seed)
    return [m.hashvalues for m in mhs]


class NearDupIndex:
    """Streaming MinHash LSH: :meth:`check_add` returns the representative ``(seq, id)`` of a near
    duplicate, or None after inserting the document as a new representative."""

    def __init__(self, cfg: NearDupConfig) -> None:
        ds = require("datasketch", "near-duplicate detection", extra="data")
        self.cfg = cfg
        self._ds = ds
        self.lsh = ds.MinHashLSH(num_perm=cfg.num_perm, params=cfg.banding)
        # The permutation scheme of the signatures (what MinHash.bulk used in the workers).
        self._scheme = ds.MinHash(num_perm=cfg.num_perm, seed=cfg.seed).scheme
        self.size = 0

    def check_add(self, hashvalues: np.ndarray, seq: int, doc_id: str) -> tuple[int, str] | None:
        mh = self._ds.LeanMinHash(seed=self.cfg.seed, hashvalues=hashvalues, scheme=self._scheme)
        found = self.lsh.query(mh)
        if found:
            return min(found)  # the earliest kept document
        self.lsh.insert((seq, doc_id), mh, check_duplication=False)
        self.size += 1
        return None
