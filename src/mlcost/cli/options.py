"""Typed CLI options: every command declares its options with these, so the same value gets the same
check everywhere, at the edge, before any work starts.

Each function returns a ``typer.Option`` whose parser applies one rule of :mod:`mlcost.spec.validate`
with the flag the user typed as the name in the message::

    seq_len: int | None = options.positive_int(None, "--seq-len", help="Tokens per sequence.")
    deadline_s: float | None = options.duration(None, "--deadline", help="Wall-clock limit, e.g. 30d.")

A rule failure is a :class:`~mlcost.errors.SpecError`: one line on stderr, exit 2 (see cli/main.py).

Also here: reading a user file as text (:func:`read_text`) and reading integer/path environment
variables (:func:`env_int`, :func:`writable_dir`), each failing by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import typer

from mlcost.errors import SpecError
from mlcost.spec import validate as V

__all__ = [
    "choice",
    "choices_csv",
    "duration",
    "env_int",
    "fraction",
    "int_range",
    "money",
    "nonneg_float",
    "nonneg_int",
    "positive_float",
    "positive_int",
    "pue",
    "read_text",
    "text_files",
    "token_count",
    "writable_dir",
]


def _flag(decls: tuple[str, ...]) -> str:
    longs = [d for d in decls if d.startswith("--")]
    return (longs or list(decls) or ["value"])[0].split("/")[0]


def _option(
    default: Any, decls: tuple[str, ...], parse: Callable[[Any, str], Any], metavar: str, **kw: Any
) -> Any:
    flag = _flag(decls)

    def parser(value: Any) -> Any:
        return parse(value, flag)

    return typer.Option(default, *decls, parser=parser, metavar=kw.pop("metavar", metavar), **kw)


def positive_int(default: Any, *decls: str, maximum: int = V.MAX_COUNT, **kw: Any) -> Any:
    """A whole number >= 1."""
    return _option(default, decls, lambda v, f: V.positive_int(v, f, maximum=maximum), "INT>=1", **kw)


def nonneg_int(default: Any, *decls: str, maximum: int = V.MAX_COUNT, **kw: Any) -> Any:
    """A whole number >= 0."""
    return _option(default, decls, lambda v, f: V.nonneg_int(v, f, maximum=maximum), "INT>=0", **kw)


def int_range(default: Any, *decls: str, lo: int, hi: int, **kw: Any) -> Any:
    """A whole number in [lo, hi]."""
    return _option(default, decls, lambda v, f: V.int_range(v, f, lo, hi), f"{lo}..{hi}", **kw)


def positive_float(
    default: Any, *decls: str, maximum: float = V.MAX_FLOAT, minimum: float = 0.0, **kw: Any
) -> Any:
    """A finite number > 0 (>= ``minimum`` when given)."""
    return _option(
        default,
        decls,
        lambda v, f: V.positive_float(v, f, maximum=maximum, minimum=minimum),
        "NUMBER>0",
        **kw,
    )


def nonneg_float(default: Any, *decls: str, maximum: float = V.MAX_FLOAT, **kw: Any) -> Any:
    """A finite number >= 0."""
    return _option(default, decls, lambda v, f: V.nonneg_float(v, f, maximum=maximum), "NUMBER>=0", **kw)


def money(default: Any, *decls: str, **kw: Any) -> Any:
    """An amount in USD, finite and >= 0."""
    return _option(default, decls, V.money, "USD", **kw)


def fraction(default: Any, *decls: str, **kw: Any) -> Any:
    """A share in (0, 1]."""
    return _option(default, decls, V.fraction, "(0,1]", **kw)


def pue(default: Any, *decls: str, **kw: Any) -> Any:
    """A data-centre PUE in [1, 5]."""
    return _option(default, decls, V.pue, "PUE", **kw)


def duration(default: Any, *decls: str, **kw: Any) -> Any:
    """A duration with a mandatory unit (30d, 12h, 90m) -> seconds (float)."""
    return _option(default, decls, V.duration_s, "DURATION", **kw)


def token_count(default: Any, *decls: str, maximum: float = V.MAX_TOKENS, **kw: Any) -> Any:
    """A count with an SI suffix (1e12, 300B, 2T) -> float > 0."""
    return _option(default, decls, lambda v, f: V.token_count(v, f, maximum=maximum), "COUNT", **kw)


def choice(default: Any, *decls: str, choices: Iterable[str], **kw: Any) -> Any:
    """One of ``choices``, case-insensitive, with a suggestion when misspelt."""
    options = tuple(choices)
    return _option(default, decls, lambda v, f: V.choice(v, f, options), "[" + "|".join(options) + "]", **kw)


def choices_csv(default: Any, *decls: str, choices: Iterable[str], **kw: Any) -> Any:
    """Comma-separated choices -> the canonical names joined by commas (split with ``.split(",")``)."""
    options = tuple(choices)
    return _option(default, decls, lambda v, f: ",".join(V.choices_csv(v, f, options)), "A,B,...", **kw)


def read_text(path: Path, what: str) -> str:
    """A user file as UTF-8 text (see :func:`mlcost.spec.validate.read_text_file`)."""
    return V.read_text_file(path, what)


def text_files(default: Any, *decls: str, **kw: Any) -> Any:
    """Paths of readable UTF-8 text files (e.g. ``--catalog``), checked before anything reads them."""

    def check(value: Any, flag: str) -> Path:
        V.read_text_file(Path(value), flag)
        return Path(value)

    return _option(default, decls, check, "FILE", **kw)


def env_int(name: str, default: int, *, minimum: int) -> int:
    """An integer environment variable (see :func:`mlcost.spec.validate.env_int`)."""
    import os

    return V.env_int(name, os.environ.get(name), default, minimum=minimum)


def writable_dir(path: Path, what: str) -> Path:
    """Create ``path`` if needed and check a file can be written there; SpecError naming ``what``."""
    import tempfile

    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".mlcost-write-check-"):
            pass
    except OSError as exc:
        raise SpecError(
            f"{what} {path} is not a writable directory ({exc.strerror or exc})",
            hint=f"make it writable or point {what} at another directory",
        ) from None
    return path
