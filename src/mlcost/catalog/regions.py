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
            (r["provider"], r["region"]): RegionRow(
                r["provider"], r["region"], r["country"], r["source"], r["date"]
            )
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


def snapshot_commits(cat: Any) -> dict[str, str]:
    """Source catalog path → commit of the imported price rows (``mlcost catalog import-skypilot``)."""
    from mlcost.catalog.skypilot import snapshot_commit

    out: dict[str, str] = {}
    for p in cat.prices():
        sha = snapshot_commit(p.source)
        if sha:
            path = p.source.split(":", 1)[1].split(";", 1)[0]
            out[path] = sha
    return dict(sorted(out.items()))


def check_place(cat: Any, provider: str | None, region: str | None) -> None:
    """Unknown provider or region → :class:`~mlcost.errors.UnknownNameError` with close matches."""
    from mlcost.errors import UnknownNameError

    if provider is not None and provider not in cat.providers():
        raise UnknownNameError("provider", provider, cat.providers())
    if region is not None:
        known = [r for r in cat.regions(provider) if r != "*"]
        if region not in known and not (provider is not None and "*" in cat.regions(provider)):
            raise UnknownNameError("region" + (f" for {provider}" if provider else ""), region, known)


def region_prices(
    cat: Any,
    *,
    device: str | None = None,
    provider: str | None = None,
    region: str | None = None,
    max_price_usd_per_h: float | None = None,
    spot: bool = False,
) -> list[dict[str, Any]]:
    """One row per (device, provider, region): the cheapest on-demand and spot price per device-hour with
    their instance, the region's carbon intensity and its kind, and the snapshot commit of the price —
    the listing ``sky show-gpus`` gives, per device-hour. ``spot`` keeps regions with a spot price and ranks
    by it; ``max_price_usd_per_h`` filters on the ranked price. Cheapest first."""
    from mlcost.catalog.skypilot import snapshot_commit

    check_place(cat, provider, region)
    dev = cat.device(device).id if device is not None else None
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for p in cat.prices(device=dev, provider=provider):  # cheapest first
        if region is not None and p.region != region:
            continue
        key = (p.device, p.provider, p.region)
        g = groups.setdefault(key, {"on-demand": None, "spot": None})
        if g[p.pricing] is None:
            g[p.pricing] = p
    rows = []
    for (d, prov, reg), g in groups.items():
        ranked = g["spot"] if spot else g["on-demand"]
        if ranked is None:
            continue
        if max_price_usd_per_h is not None and ranked.usd_per_device_h > max_price_usd_per_h:
            continue
        carbon, kind = carbon_label(cat, prov, reg)
        od, sp = g["on-demand"], g["spot"]
        rows.append(
            {
                "device": d,
                "provider": prov,
                "region": reg,
                "usd_per_device_h": od.usd_per_device_h if od else None,
                "instance": od.instance if od else None,
                "spot_usd_per_device_h": sp.usd_per_device_h if sp else None,
                "spot_instance": sp.instance if sp else None,
                "kg_co2_per_kwh": None if kind == "no carbon data" else carbon.kg_co2_per_kwh,
                "carbon": kind,
                "snapshot_commit": snapshot_commit(ranked.source),
                "date": ranked.date,
            }
        )
    rank_key = "spot_usd_per_device_h" if spot else "usd_per_device_h"
    rows.sort(key=lambda r: (r[rank_key], r["device"], r["provider"], r["region"]))
    return rows
