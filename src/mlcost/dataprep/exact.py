"""Exact deduplication by a hash of the normalised text.

The first document with a given hash is kept; later ones are removed with the cluster id (the hash) and the
kept representative's id. The index holds one 16-byte BLAKE2b digest per distinct document plus the
representative id.
"""

from __future__ import annotations

import hashlib

#: Digest size of the normalised-text hash. Units: bytes. 128 bits: collisions are negligible (birthday
#: bound ~2^64 documents).
DIGEST_BYTES = 16


def text_hash(normalized: str) -> bytes:
    """BLAKE2b-128 of the normalised text (UTF-8)."""
    return hashlib.blake2b(normalized.encode(), digest_size=DIGEST_BYTES).digest()


class ExactIndex:
    """Streaming exact-duplicate index of kept documents: digest → the representative's id."""

    def __init__(self) -> None:
        self._seen: dict[bytes, str] = {}

    def lookup(self, digest: bytes) -> str | None:
        """The kept representative's id when ``digest`` was seen, else None."""
        return self._seen.get(digest)

    def add(self, digest: bytes, doc_id: str) -> None:
        """Remember a kept document."""
        self._seen.setdefault(digest, doc_id)

    def __len__(self) -> int:
        return len(self._seen)
