"""Cloud regions joined to grid carbon intensity.

``data/regions.csv`` says which country each priced cloud region is in (provider, region, ISO-3166 alpha-3
country, source). Where ``carbon.csv`` has no figure for a region, the region gets its country's yearly grid
average as its own ``carbon.csv`` row, labelled ``country grid average`` in its source
(:func:`country_fill_rows` writes them; ``tests/catalog/test_regions.py`` checks the shipped file holds exactly
those rows). A priced region with neither is reported as ``no carbon data`` (:func:`carbon_label`): the
estimator then falls back to the provider-wide row, and the planner leaves it out of ``--objective co2``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
REGIONS_FILE = DATA_DIR / "regions.csv"
#: Prefix of the source of a carbon row filled from the country average.
COUNTRY_FILL = "country grid average"
#: Kinds of carbon figure a priced region can have.
CARBON_KINDS = ("region", COUNTRY_FILL, "no carbon data")


@dataclass(frozen=True)
class RegionRow:
    provider: str
    region: str
    country: str
    source: str
    date: str


def load_regions(path: Path | None = None) -> dict[tuple[str, str], RegionRow]:
    """``(provider, region) → RegionRow`` from ``regions.csv``."""
    with (path or REGIONS_FILE).open(newline="", encoding="utf-8") as fh:
        return {
            (r["provider"], r["region"]): RegionRow(r["provider"], r["region"], r["country"], r["source"], r["date"])
            for r in csv.DictReader(fh)
        }


def country_fill_rows(
    carbon: dict[tuple[str, str], tuple[float, str]], regions: dict[tuple[str, str], RegionRow]
) -> list[dict[str, Any]]:
    """Carbon rows for regions without a figure of their own: the country's grid average, labelled.

    ``carbon`` maps ``(zone, provider)`` to ``(kg CO2e/kWh, source)`` (countries have provider ``""``)."""
    out = []
    for (provider, region), reg in sorted(regions.items()):
        if (region, provider) in carbon or (reg.country, "") not in carbon:
            continue
        kg, source = carbon[(reg.country, "")]
        out.append(
            {
                "zone": region,
                "provider": provider,
                "kg_co2_per_kwh": kg,
                "source": f"{COUNTRY_FILL} of {reg.country} (no region-specific figure): {source}; "
                f"region in {reg.country} per regions.csv: {reg.source}",
                "date": reg.date,
            }
        )
    return out


def carbon_label(cat: Any, provider: str | None, region: str | None) -> tuple[Any, str]:
    """The carbon row the estimator uses for a price row's place, and what kind of figure it is:
    ``region`` (a figure for the region), ``country grid average`` or ``no carbon data`` (a provider-wide or
    world fallback)."""
    row = cat.carbon(zone=region if region not in (None, "*") else None, provider=provider)
    if region in (None, "*") or row.zone != region:
        return row, "no carbon data"
    return row, COUNTRY_FILL if row.source.startswith(COUNTRY_FILL) else "region"
