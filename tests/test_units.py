"""units.py: the parsers of user-facing quantities and the formatters."""

from __future__ import annotations

import pytest

from mlcost.errors import SpecError
from mlcost.units import (
    GIB,
    S_PER_DAY,
    S_PER_MONTH,
    S_PER_YEAR,
    format_bytes,
    format_duration,
    format_si,
    parse_count,
    parse_duration_s,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 30 * S_PER_DAY),
        ("12h", 12 * 3600.0),
        ("90min", 5400.0),
        ("90 m", 5400.0),
        ("45s", 45.0),
        ("2 days", 2 * S_PER_DAY),
        ("1.5hr", 5400.0),
        ("2w", 14 * S_PER_DAY),
        ("1mo", S_PER_MONTH),
        ("2y", 2 * S_PER_YEAR),
        ("1e3s", 1000.0),
        (" 0.5d ", 0.5 * S_PER_DAY),
    ],
)
def test_parse_duration_with_units(text: str, seconds: float) -> None:
    assert parse_duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "30 parsecs", "-5d", "0h", "d", "1e999s", "5 d d"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_duration_s(text)
    assert repr(text) in str(err.value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e12", 1e12),
        ("300B", 300e9),
        ("2T", 2e12),
        ("7b", 7e9),
        ("1_000", 1000.0),
        ("1,000", 1000.0),
        ("1.5k", 1500.0),
        ("3M", 3e6),
        ("0", 0.0),
        (42, 42.0),
    ],
)
def test_parse_count(text: str | int, value: float) -> None:
    assert parse_count(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "x", "12q", "-1", "inf", "nan", "1e400", "T"])
def test_parse_count_rejects_and_names_what(text: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_count(text, what="--tokens")
    assert "--tokens" in str(err.value)


def test_format_duration_picks_the_unit() -> None:
    assert format_duration(5e-4) == "500.0 µs"
    assert format_duration(0.0032) == "3.2 ms"
    assert format_duration(45.0) == "45.0 s"
    assert format_duration(600.0) == "10.0 min"
    assert format_duration(9000.0) == "2.5 h"
    assert format_duration(34.1 * S_PER_DAY) == "34.1 d"
    assert format_duration(float("inf")) == "inf"


def test_format_bytes_and_si() -> None:
    assert format_bytes(1.5 * GIB) == "1.50 GiB"
    assert format_bytes(512) == "512 B"
    assert format_bytes(3 * 1024**4) == "3.00 TiB"
    assert format_si(1.23e12, "FLOP") == "1.23 TFLOP"
    assert format_si(456e9) == "456 G"
    assert format_si(12.0) == "12"
