"""Unit constants and parsers for user-facing quantities (durations, counts, sizes).

Internally everything is SI with the unit in the name: seconds (``_s``), bytes, FLOPs, watts, joules,
kWh, USD, kg CO2e.
"""

from __future__ import annotations

import math
import re

from mlcost.errors import SpecError

KIB = 1024
MIB = 1024**2
GIB = 1024**3
TIB = 1024**4
GB = 1e9
TB = 1e12

S_PER_MIN = 60.0
S_PER_H = 3600.0
S_PER_DAY = 86400.0
S_PER_MONTH = 30.0 * S_PER_DAY  # a billing month of 30 days
S_PER_YEAR = 365.0 * S_PER_DAY
J_PER_KWH = 3.6e6

_DURATION_RE = re.compile(
    r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(s|sec|m|min|h|hr|d|day|days|w|wk|mo|y)?\s*$"
)
_DURATION_UNITS_S = {
    None: 1.0,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "d": S_PER_DAY,
    "day": S_PER_DAY,
    "days": S_PER_DAY,
    "w": 7 * S_PER_DAY,
    "wk": 7 * S_PER_DAY,
    "mo": S_PER_MONTH,
    "y": S_PER_YEAR,
}

_SUFFIX = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12, "p": 1e15}


def parse_duration_s(text: str | float | int) -> float:
    """Parse ``"30d"``, ``"12h"``, ``"90min"``, ``"3600"`` (seconds) into seconds."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        match = _DURATION_RE.match(text)
        if not match:
            raise SpecError(
                f"cannot read duration {text!r}",
                hint="write a number with a unit: s, min, h, d, w, mo (30 days) or y, e.g. '30d' or '12h'",
            )
        value = float(match.group(1)) * _DURATION_UNITS_S[match.group(2)]
    if not math.isfinite(value) or value <= 0:
        raise SpecError(f"duration must be positive, got {text!r}")
    return value


def parse_count(text: str | float | int, *, what: str = "value") -> float:
    """Parse ``"1e12"``, ``"300B"``, ``"2T"``, ``"7b"``, ``"1_000"`` into a float."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        s = text.strip().replace("_", "").replace(",", "")
        mult = 1.0
        if s and s[-1].lower() in _SUFFIX:
            mult = _SUFFIX[s[-1].lower()]
            s = s[:-1]
        try:
            value = float(s) * mult
        except ValueError:
            raise SpecError(
                f"cannot read {what} {text!r}", hint="write a number such as 1e12, 300B or 2T"
            ) from None
    if not math.isfinite(value) or value < 0:
        raise SpecError(f"{what} must be a non-negative finite number, got {text!r}")
    return value


def format_duration(seconds: float) -> str:
    """Human-readable duration: '3.2 ms', '45.0 s', '2.5 h', '34.1 d'."""
    if not math.isfinite(seconds):
        return "inf"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * S_PER_DAY:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / S_PER_DAY:.1f} d"


def format_bytes(n: float) -> str:
    """'1.5 GiB' style."""
    for unit, size in (("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} B"


def format_si(n: float, unit: str = "") -> str:
    """'1.23 T', '456 G' style (powers of 1000)."""
    for prefix, size in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g} {prefix}{unit}"
    return f"{n:.3g} {unit}".rstrip()
