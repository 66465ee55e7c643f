"""The one formatting style (values are hand-checked)."""

from __future__ import annotations

from mlcost.report import format as f


def test_units() -> None:
    assert f.tokens(1e12) == "1.0 T tokens"
    assert f.count(8.03e9, "params") == "8.0 B params"
    assert f.duration(20.2 * 3600) == "20.2 h"
    assert f.duration(24.5 * 86400) == "24.5 d"
    assert f.duration(0.0032) == "3.2 ms"
    assert f.bytes_(53.9 * 2**30) == "53.9 GiB"
    assert f.bytes_in(80e9) == "74.5"
    assert f.money(38486.2) == "$38,486"
    assert f.money(1.99) == "$1.99"
    assert f.money(None) == "-"
    assert f.energy_kwh(316.4) == "316 kWh"
    assert f.energy_kwh(3164.3) == "3.2 MWh"
    assert f.energy_kwh(14073) == "14.1 MWh"
    assert f.co2_kg(116.9) == "117 kg"
    assert f.co2_kg(1169.2) == "1.2 t"
    assert f.co2_kg(52000) == "52.0 t"
    assert f.rate(11870) == "11.9 k tokens/s"
    assert f.pct(0.462) == "46.2%"


def test_never_exponent_notation() -> None:
    for x in (1e-9, 3e-5, 1.5e25, 7e30, 123456789.0):
        for fn in (f.count, f.si, f.duration, f.bytes_, f.money, f.energy_kwh, f.co2_kg, f.rate, f.number):
            assert "e+" not in fn(x), (fn.__name__, x, fn(x))
