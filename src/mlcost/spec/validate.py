"""One set of rules for user-given values, shared by the CLI (:mod:`mlcost.cli.options`) and the Python API.

Each rule takes the raw value (a string from the command line, or a number from Python) and ``what``, the
name the user typed (``--seq-len`` on the command line, a field name in the API), and returns the value
in its canonical type or raises :class:`~mlcost.errors.SpecError` with a one-line message that names
``what``, the accepted range and the value given. Zero never means "default": a rule that needs a
positive value refuses 0.

Rules
    positive_int        whole number >= 1 (optionally <= ``maximum``)
    nonneg_int          whole number >= 0
    int_range           whole number in [lo, hi]
    positive_float      finite number > 0
    nonneg_float        finite number >= 0 (``money`` is this, for amounts in USD)
    fraction            finite number in (0, 1]
    pue                 finite number in [1, 5]
    duration_s          a number WITH a unit (30d, 12h, 90m, 45s, 6mo, 2y) -> seconds; a bare number is refused
    token_count         count with optional SI suffix (1e12, 300B, 2T, 7k) -> float > 0
    choice              one of a fixed set, case-insensitive, with "did you mean"
    choices_csv         comma-separated choices (each checked as ``choice``), at least one
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlcost.errors import SpecError

#: Largest count a user can ask for anywhere (devices, batch, steps, tokens per sequence): beyond it the
#: floating-point totals lose meaning. Units: count.
MAX_COUNT = 10**9
#: Largest token total (a quadrillion tokens, ~70x the largest public training runs of 2025). Units: tokens.
MAX_TOKENS = 1e18
#: Largest duration (a century). Units: s.
MAX_DURATION_S = 100 * 365 * 86400.0
#: Largest float accepted for prices, budgets, rates. Anything above is a typo, not a plan.
MAX_FLOAT = 1e15

_DURATION_UNITS_S: dict[str, float] = {
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "w": 7 * 86400.0,
    "wk": 7 * 86400.0,
    "mo": 30 * 86400.0,
    "y": 365 * 86400.0,
}
_DURATION_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")
_SI = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12, "p": 1e15}


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _fail(what: str, rule: str, value: Any, hint: str | None = None) -> SpecError:
    return SpecError(f"{what} must be {rule}, got {_shown(value)}", hint=hint)


def _number(value: Any, what: str, rule: str, exact: bool = False) -> float:
    if isinstance(value, bool):
        raise _fail(what, rule, value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and not exact:
        try:
            return float(value.strip().replace("_", ""))
        except ValueError:
            raise _fail(what, rule, value) from None
    raise _fail(what, rule, value)


def _integer(value: Any, what: str, rule: str, exact: bool = False) -> int:
    if isinstance(value, bool) or (exact and not isinstance(value, int)):
        raise _fail(what, rule, value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise _fail(what, rule, value)
        return int(value)
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        try:
            return int(text)
        except ValueError:
            pass
        try:  # "1e3" is a whole number too
            f = float(text)
        except ValueError:
            raise _fail(what, rule, value) from None
        if not math.isfinite(f) or f != int(f):
            raise _fail(what, rule, value)
        return int(f)
    raise _fail(what, rule, value)


def int_range(value: Any, what: str, lo: int, hi: int, *, exact: bool = False) -> int:
    """A whole number in [lo, hi]. ``exact``: the value must already be an ``int`` (Python API fields),
    not a string or float to convert."""
    rule = f"a whole number from {lo} to {hi:,}" if hi < MAX_COUNT else f"a whole number >= {lo}"
    n = _integer(value, what, rule, exact)
    if not lo <= n <= hi:
        raise _fail(what, rule, value)
    return n


def positive_int(value: Any, what: str, *, maximum: int = MAX_COUNT, exact: bool = False) -> int:
    """A whole number >= 1 (and <= ``maximum``)."""
    return int_range(value, what, 1, maximum, exact=exact)


def nonneg_int(value: Any, what: str, *, maximum: int = MAX_COUNT, exact: bool = False) -> int:
    """A whole number >= 0."""
    return int_range(value, what, 0, maximum, exact=exact)


def positive_float(
    value: Any, what: str, *, maximum: float = MAX_FLOAT, minimum: float = 0.0, exact: bool = False
) -> float:
    """A finite number > 0 (at least ``minimum`` when given, at most ``maximum``). ``exact``: the value
    must already be a number (Python API fields), not a string to parse."""
    low = f">= {minimum:g}" if minimum > 0 else "> 0"
    rule = f"a finite number {low}" + (f" and <= {maximum:g}" if maximum < MAX_FLOAT else "")
    x = _number(value, what, rule, exact)
    if not math.isfinite(x) or x <= 0 or x < minimum or x > maximum:
        raise _fail(what, rule, value)
    return x


def nonneg_float(value: Any, what: str, *, maximum: float = MAX_FLOAT, exact: bool = False) -> float:
    """A finite number >= 0."""
    rule = "a finite number >= 0" + (f" and <= {maximum:g}" if maximum < MAX_FLOAT else "")
    x = _number(value, what, rule, exact)
    if not math.isfinite(x) or x < 0 or x > maximum:
        raise _fail(what, rule, value)
    return x


def money(value: Any, what: str) -> float:
    """An amount of money in USD: finite, >= 0."""
    rule = "an amount in USD, finite and >= 0"
    x = _number(value, what, rule)
    if not math.isfinite(x) or x < 0 or x > MAX_FLOAT:
        raise _fail(what, rule, value)
    return x


def fraction(value: Any, what: str) -> float:
    """A share in (0, 1]."""
    rule = "a fraction in (0, 1]"
    x = _number(value, what, rule)
    if not math.isfinite(x) or not 0 < x <= 1:
        raise _fail(what, rule, value, hint="e.g. 0.9 for 90%")
    return x


def pue(value: Any, what: str) -> float:
    """A data-centre PUE (facility energy / IT energy): in [1, 5]."""
    rule = "a PUE from 1.0 to 5.0 (facility energy / IT energy)"
    x = _number(value, what, rule)
    if not math.isfinite(x) or not 1.0 <= x <= 5.0:
        raise _fail(what, rule, value, hint="typical data centres are 1.1-1.6")
    return x


def duration_s(value: Any, what: str) -> float:
    """A duration written with its unit (``30d``, ``12h``, ``90m``, ``45s``, ``2w``, ``6mo``, ``2y``) in
    seconds. A bare number is refused (is ``--deadline 30`` thirty days or thirty seconds?). Numbers given
    from Python (int/float) are seconds, as the ``_s`` names say."""
    units = "s, m/min, h, d, w, mo or y"
    shown: Any = value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match and not match.group(2):
            n = match.group(1)
            raise SpecError(
                f"{what} needs a unit, got {value!r}",
                hint=f"add a unit: {n}d, {n}h, {n}m ({units})",
            )
        unit = match.group(2).lower() if match else None
        if match is None or unit not in _DURATION_UNITS_S:
            raise SpecError(
                f"{what} must be a duration with a unit, got {_shown(value)}",
                hint=f"e.g. 30d, 12h, 90m (units: {units})",
            )
        seconds = float(match.group(1)) * _DURATION_UNITS_S[unit]
    else:
        raise _fail(what, "a duration with a unit such as 30d or 12h", value)
    if not math.isfinite(seconds) or seconds <= 0 or seconds > MAX_DURATION_S:
        raise _fail(what, "a duration > 0 and at most 100y", shown)
    return seconds


def token_count(value: Any, what: str, *, maximum: float = MAX_TOKENS, allow_zero: bool = False) -> float:
    """A count with an optional SI suffix: ``1e12``, ``300B``, ``2T``, ``7k``, ``1_000``; at least 1
    (or exactly 0 with ``allow_zero``)."""
    rule = f"a count {'>= 0' if allow_zero else '>= 1'} up to {maximum:.0e}, such as 1e12, 300B or 2T"
    if isinstance(value, bool):
        raise _fail(what, rule, value)
    if isinstance(value, (int, float)):
        x = float(value)
    elif isinstance(value, str):
        text = value.strip().replace("_", "").replace(",", "")
        mult = 1.0
        if text and text[-1].lower() in _SI:
            mult = _SI[text[-1].lower()]
            text = text[:-1]
        try:
            x = float(text) * mult
        except ValueError:
            raise _fail(what, rule, value) from None
    else:
        raise _fail(what, rule, value)
    if not math.isfinite(x) or x > maximum or not (x >= 1 or (x == 0 and allow_zero)):
        raise _fail(what, rule, value)
    return x


def choice(value: Any, what: str, choices: Iterable[str]) -> str:
    """One of ``choices``, matched case-insensitively; returns the canonical spelling."""
    options = list(choices)
    if not isinstance(value, str):
        raise _fail(what, f"one of {', '.join(options)}", value)
    by_lower = {c.lower(): c for c in options}
    found = by_lower.get(value.strip().lower())
    if found is not None:
        return found
    close = difflib.get_close_matches(value.strip().lower(), list(by_lower), n=1, cutoff=0.5)
    hint = f"did you mean {by_lower[close[0]]!r}?" if close else None
    raise SpecError(f"{what} must be one of {', '.join(options)}, got {_shown(value)}", hint=hint)


def choices_csv(value: Any, what: str, choices: Iterable[str]) -> tuple[str, ...]:
    """Comma-separated values, each one of ``choices`` (case-insensitive); at least one; no duplicates."""
    options = list(choices)
    if not isinstance(value, str):
        raise _fail(what, f"a comma-separated list of {', '.join(options)}", value)
    items = [x for x in (s.strip() for s in value.split(",")) if x]
    if not items:
        raise SpecError(f"{what} is empty", hint=f"give one or more of {', '.join(options)}")
    return tuple(dict.fromkeys(choice(x, what, options) for x in items))


def context_fits(model_name: str, max_seq_len: int, tokens: int, what: str) -> None:
    """Refuse a sequence longer than the model's context, for every position scheme.

    RoPE models have no position table, but attention beyond the trained context is not what the model
    does, and the quadratic terms turn a typo into a plausible-looking month-long answer."""
    if tokens > max_seq_len:
        raise SpecError(
            f"{what} = {tokens:,} tokens exceed the {max_seq_len:,}-token context of {model_name}",
            hint=f"use at most {max_seq_len:,}; for a model extended past it (RoPE scaling) pass a "
            "config.json whose max_position_embeddings is the extended context",
        )


def read_text_file(path: str | Path, what: str) -> str:
    """A user file as UTF-8 text; a missing, unreadable, directory or binary file is a SpecError naming
    ``what`` (the flag or argument that gave the path)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise SpecError(f"{what} {path} is a directory", hint="give a file") from None
    except OSError as exc:
        raise SpecError(
            f"{what} {path}: cannot read ({exc.strerror or exc})", hint="check the path"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"{what} {path} is not UTF-8 text (byte {exc.start}: {data[exc.start : exc.start + 1]!r})",
            hint="give a text file (TOML or YAML), not a binary one",
        ) from None
    if "\x00" in text:
        raise SpecError(f"{what} {path} contains NUL bytes: not a text file", hint="give a TOML or YAML file")
    return text


def env_int(name: str, raw: str | None, default: int, *, minimum: int) -> int:
    """The value ``raw`` of the environment variable ``name`` (WORLD_SIZE, RANK, ...; the caller reads the
    environment, this module never does) or ``default`` when unset or empty; a SpecError naming the
    variable when it is not a whole number >= ``minimum``."""
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SpecError(
            f"environment variable {name}={raw[:40]!r} is not a whole number", hint=f"unset {name} or fix it"
        ) from None
    if value < minimum:
        raise SpecError(
            f"environment variable {name}={value} must be >= {minimum}", hint=f"unset {name} or fix it"
        )
    return value
