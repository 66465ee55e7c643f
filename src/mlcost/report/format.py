"""One formatting style for every view (terminal tables, Markdown, CSV, HTML, notebook reprs).

Counts use k/M/B/T (as the CLI parses "300B", "2T"); FLOPs use SI prefixes; durations pick one unit from
µs to years; bytes use binary units (GiB); money is US dollars with thousands separators; energy is Wh,
kWh, MWh or GWh; CO2e is g, kg or t. No function here returns "e+" notation. ``None`` renders as "-".
"""

from __future__ import annotations

import math
from typing import Any

S_PER_DAY = 86400.0
S_PER_YEAR = 365.0 * S_PER_DAY
MISSING = "-"

_COUNT_PREFIXES = (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3))
_SI_PREFIXES = (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3))
_BINARY = (("TiB", 2.0**40), ("GiB", 2.0**30), ("MiB", 2.0**20), ("KiB", 2.0**10))


def _num(x: Any) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v


def _sig(v: float) -> str:
    """Three significant figures without exponent notation: 1.00 → '1.0', 12.3, 123, 1,234."""
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1 or a == 0:
        return f"{v:.1f}" if a >= 1 else "0"
    return f"{v:.2g}" if a >= 1e-4 else "0"


def _prefixed(v: float, prefixes: tuple[tuple[str, float], ...], unit: str, sep: str = "") -> str:
    """``sep`` goes between prefix and unit: '' for SI units ('PFLOP'), ' ' for words ('B tokens')."""
    for prefix, size in prefixes:
        if abs(v) >= size:
            scaled = f"{v / size:,.0f}" if abs(v) / size >= 1e4 else _sig(v / size)  # never "e+"
            return f"{scaled} {prefix}{sep if unit else ''}{unit}".rstrip()
    return f"{_sig(v)} {unit}".rstrip()


def count(x: Any, unit: str = "") -> str:
    """A large count: '1.0 T', '8.0 B params', '161 B tokens', '512'."""
    v = _num(x)
    if v is None or not math.isfinite(v):
        return MISSING
    if abs(v) < 1000 and float(v).is_integer():
        return f"{v:.0f} {unit}".rstrip()
    return _prefixed(v, _COUNT_PREFIXES, unit, " ")


def tokens(x: Any) -> str:
    """'1.0 T tokens'."""
    return count(x, "tokens")


def si(x: Any, unit: str = "") -> str:
    """SI prefixes (powers of 1000): '50.6 PFLOP', '457 TFLOP/s'."""
    v = _num(x)
    if v is None or not math.isfinite(v):
        return MISSING
    return _prefixed(v, _SI_PREFIXES, unit)


def duration(x: Any) -> str:
    """One style: '850 µs', '3.2 ms', '45.0 s', '12.5 min', '20.2 h', '24.5 d', '1.3 y'."""
    s = _num(x)
    if s is None:
        return MISSING
    if not math.isfinite(s):
        return "never" if s > 0 else MISSING
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    if s < 120:
        return f"{s:.1f} s"
    if s < 2 * 3600:
        return f"{s / 60:.1f} min"
    if s < 2 * S_PER_DAY:
        return f"{s / 3600:.1f} h"
    if s < 2 * S_PER_YEAR:
        return f"{s / S_PER_DAY:,.1f} d"
    return f"{s / S_PER_YEAR:,.1f} y"


def bytes_(x: Any) -> str:
    """Binary units: '53.9 GiB', '160 MiB', '512 B'."""
    v = _num(x)
    if v is None:
        return MISSING
    for unit, size in _BINARY:
        if abs(v) >= size:
            return f"{_sig(v / size)} {unit}"
    return f"{v:.0f} B"


def bytes_in(x: Any, unit: str = "GiB") -> str:
    """Bytes as a number in a fixed binary unit (the unit goes in the column header): '53.9'."""
    v = _num(x)
    if v is None:
        return MISSING
    return _sig(v / dict(_BINARY)[unit])


def money(x: Any) -> str:
    """US dollars: '$38,486', '$41.67', '$0.0034'; None (no price) → '-'."""
    v = _num(x)
    if v is None or not math.isfinite(v):
        return MISSING
    sign = "-" if v < 0 else ""
    a = abs(v)
    if a >= 100:
        return f"{sign}${a:,.0f}"
    if a >= 0.01 or a == 0:
        return f"{sign}${a:.2f}"
    return f"{sign}${a:.2g}"


def energy_kwh(x: Any) -> str:
    """Energy given in kWh: '850 Wh', '316 kWh', '3.2 MWh', '14.1 MWh', '2.3 GWh'."""
    v = _num(x)
    if v is None or not math.isfinite(v):
        return MISSING
    a = abs(v)
    if a < 1:
        return f"{_sig(v * 1e3)} Wh"
    if a < 1e3:
        return f"{_sig(v)} kWh"
    if a < 1e6:
        return f"{_sig(v / 1e3)} MWh"
    return f"{v / 1e6:,.1f} GWh"


def energy_j(x: Any) -> str:
    """Energy given in joules (measured runs): '12.3 J', '4.5 kJ', then kWh."""
    v = _num(x)
    if v is None:
        return MISSING
    if abs(v) < 1e3:
        return f"{_sig(v)} J"
    if abs(v) < 3.6e5:
        return f"{_sig(v / 1e3)} kJ"
    return energy_kwh(v / 3.6e6)


def co2_kg(x: Any) -> str:
    """CO2e given in kg: '12 g', '117 kg', '1.2 t', '52.0 t', '1,234 t'."""
    v = _num(x)
    if v is None or not math.isfinite(v):
        return MISSING
    a = abs(v)
    if a < 1:
        return f"{_sig(v * 1e3)} g"
    if a < 1e3:
        return f"{_sig(v)} kg"
    return f"{v / 1e3:,.0f} t" if a >= 1e6 else f"{_sig(v / 1e3)} t"


def pct(x: Any, signed: bool = False) -> str:
    """A fraction as a percentage: 0.462 → '46.2%' ('+46.2%' when signed)."""
    v = _num(x)
    if v is None or not math.isfinite(v):
        return MISSING
    return f"{v * 100:+.1f}%" if signed else f"{v * 100:.1f}%"


def rate(x: Any, unit: str = "tokens/s") -> str:
    """A throughput: '75.8 k tokens/s'."""
    v = _num(x)
    if v is None or not math.isfinite(v):
        return MISSING
    return _prefixed(v, _COUNT_PREFIXES, unit, " ")


def number(x: Any) -> str:
    """Any plain number without exponent notation: '0.35', '1.2', '1,024', '3.1 B'."""
    v = _num(x)
    if v is None:
        return MISSING if x is None else str(x)
    if float(v).is_integer() and abs(v) < 1e6:
        return f"{v:,.0f}"
    if abs(v) >= 1e6:
        return count(v)
    return _sig(v) if abs(v) >= 1e-4 else f"{v:.2g}".replace("e-0", "e-")


def value(x: Any) -> str:
    """An assumption's value: numbers via :func:`number`, everything else as text."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return MISSING if x is None else str(x)
    return number(x)


def by_unit(name: str, x: Any) -> str:
    """Format ``x`` by the unit suffix of its field name (``step_time_s``, ``peak_memory_bytes``, ...)."""
    if _num(x) is None:
        return MISSING if x is None else str(x)
    if name.endswith("_bytes"):
        return bytes_(x)
    if name.endswith("flops_per_s"):
        return si(x, "FLOP/s")
    if name.endswith("_per_s"):
        return rate(x, "/s")
    if name.endswith("_s"):
        return duration(x)
    if name.endswith("_usd"):
        return money(x)
    if name.endswith("_kwh"):
        return energy_kwh(x)
    if name.endswith("_j"):
        return energy_j(x)
    if name.endswith("_kg") or name.endswith("_kg_co2"):
        return co2_kg(x)
    if name in ("mfu", "hfu") or name.endswith("_rel") or name.endswith("_frac"):
        return pct(x)
    if name.endswith("_flops"):
        return si(x, "FLOP")
    return number(x)
