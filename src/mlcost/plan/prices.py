"""The price rows a plan may use for one device, as arrays, with their PUE, grid carbon and spot fallback.

The catalog holds a price per device, provider, region, pricing and instance (every region: thousands of
rows). The kernel's cost, energy and CO2 are linear in price, PUE and carbon, so a row another row beats on
all three (cheaper or equal price, PUE and PUE × carbon, one of them strictly, or equal with an earlier row) can
never rank first for any objective or pass a cap the other fails: such rows are dropped before the
expansion (:func:`prune_dominated`). Spot rows compare on their own price, their fallback's price and both
places' PUE × carbon. A region without a carbon figure counts as unknown carbon: it is kept for cost and time
but left out when emissions are ranked or capped (``need_carbon``).

Marketplace rows that are single offers (``SINGLE_OFFER_PROVIDERS``: the SkyPilot Vast catalog lists one
host's offer per row, "one offer per row at catalog-build time" in the snapshot's README) can supply at most
the devices of that offer: ``max_count`` says so and the planner drops larger plans on them. List-price
providers have no such limit in the catalog (availability is not modelled).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlcost.catalog.regions import carbon_label
from mlcost.catalog.schema import offer_devices


@dataclass(frozen=True)
class PriceRows:
    """Price rows of one device (one entry per row).

    Attributes:
        provider / region / pricing / instance / source: the row (None provider: an unpriced pseudo-row).
        usd_per_device_h: USD per device-hour (NaN: no price).
        pue: data-centre PUE of the provider.
        carbon_kg_per_kwh: grid carbon of the place (kg CO2e/kWh).
        carbon: "region", "country grid average" or "no carbon data".
        fallback: index of the on-demand row a spot row falls back to; -1 for none / on-demand rows.
        notes: what the planner should say about these rows.
        max_count: most devices the row can supply (inf: no limit in the catalog).
    """

    provider: list[str | None]
    region: list[str | None]
    pricing: list[str]
    instance: list[str]
    source: list[str | None]
    usd_per_device_h: np.ndarray
    pue: np.ndarray
    carbon_kg_per_kwh: np.ndarray
    carbon: list[str]
    fallback: np.ndarray
    notes: list[str]
    max_count: np.ndarray

    def __len__(self) -> int:
        return len(self.pricing)

    def take(self, idx: Sequence[int]) -> PriceRows:
        """The rows ``idx`` in that order, fallbacks re-indexed (a fallback outside ``idx`` is dropped)."""
        pos = {int(j): k for k, j in enumerate(idx)}
        fb = np.array([pos.get(int(self.fallback[j]), -1) for j in idx], dtype=np.int64)
        return PriceRows(
            [self.provider[j] for j in idx],
            [self.region[j] for j in idx],
            [self.pricing[j] for j in idx],
            [self.instance[j] for j in idx],
            [self.source[j] for j in idx],
            self.usd_per_device_h[list(idx)],
            self.pue[list(idx)],
            self.carbon_kg_per_kwh[list(idx)],
            [self.carbon[j] for j in idx],
            fb,
            self.notes,
            self.max_count[list(idx)],
        )


_LABELS: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], tuple[Any, str]]] = weakref.WeakKeyDictionary()


def _carbon_label_cached(cat: Any, provider: str, region: str) -> tuple[Any, str]:
    """:func:`carbon_label`, remembered per catalog object (a plan asks the same places for every device)."""
    try:
        per_cat = _LABELS.setdefault(cat, {})
    except TypeError:  # an object that takes no weak reference: no cache
        return carbon_label(cat, provider, region)
    if (provider, region) not in per_cat:
        per_cat[(provider, region)] = carbon_label(cat, provider, region)
    return per_cat[(provider, region)]


def _empty(notes: list[str]) -> PriceRows:
    z = np.zeros(0)
    return PriceRows([], [], [], [], [], z, z, z, [], np.zeros(0, dtype=np.int64), notes, z)


def price_rows(
    cat: Any,
    device_id: str,
    *,
    providers: tuple[str, ...] | None,
    regions: tuple[str, ...] | None,
    spot: bool,
    need_price: bool,
    need_carbon: bool = False,
    prune: bool = True,
) -> PriceRows:
    """The device's allowed price rows (the cheapest row per provider/region/pricing, as ``Catalog.price``
    picks), dominated rows pruned (module docstring), or one unpriced pseudo-row (default PUE, world carbon)
    when prices are not needed and none exist."""
    rows = cat.prices(device=device_id)
    allowed = ("on-demand", "spot") if spot else ("on-demand",)
    seen: set[tuple[str, str, str]] = set()
    kept = []
    for r in rows:  # cheapest first
        key = (r.provider, r.region, r.pricing)
        if key in seen or r.pricing not in allowed:
            continue
        if providers is not None and r.provider not in providers:
            continue
        if regions is not None and r.region not in regions:
            continue
        seen.add(key)
        kept.append(r)
    notes: list[str] = []
    if not kept:
        if need_price or providers is not None or regions is not None:
            return _empty(notes)
        pue = cat.pue(None).pue
        carbon = cat.carbon(None, None).kg_co2_per_kwh
        return PriceRows(
            [None],
            [None],
            ["on-demand"],
            [""],
            [None],
            np.array([np.nan]),
            np.array([pue]),
            np.array([carbon]),
            ["no carbon data"],
            np.array([-1]),
            notes,
            np.array([np.inf]),
        )
    labels = [_carbon_label_cached(cat, r.provider, r.region) for r in kept]
    if need_carbon:
        known = [i for i, (_row, kind) in enumerate(labels) if kind != "no carbon data"]
        if len(known) < len(kept):
            notes.append(
                f"{device_id}: {len(kept) - len(known)} price rows in places without carbon data were left out "
                "of the emissions ranking"
            )
        kept = [kept[i] for i in known]
        labels = [labels[i] for i in known]
        if not kept:
            return _empty(notes)
    fallback = np.full(len(kept), -1, dtype=np.int64)
    od = [i for i, r in enumerate(kept) if r.pricing == "on-demand"]
    for i, r in enumerate(kept):
        if r.pricing != "spot":
            continue
        same = [j for j in od if kept[j].provider == r.provider and kept[j].region == r.region]
        if same:
            fallback[i] = same[0]
        elif od:
            fallback[i] = od[0]  # cheapest allowed on-demand row of this device
    out = PriceRows(
        [r.provider for r in kept],
        [r.region for r in kept],
        [r.pricing for r in kept],
        [r.instance for r in kept],
        [r.source for r in kept],
        np.array([r.usd_per_device_h for r in kept]),
        np.array([cat.pue(r.provider).pue for r in kept]),
        np.array([row.kg_co2_per_kwh for row, _kind in labels]),
        [kind for _row, kind in labels],
        fallback,
        notes,
        np.array([offer_devices(r.provider, r.instance) for r in kept]),
    )
    return prune_dominated(out) if prune else out


def _pareto_keep(metrics: np.ndarray) -> np.ndarray:
    """Indices of rows no other row dominates (≤ in every column, < in one; among equal rows the first)."""
    n = metrics.shape[0]
    keep = []
    for i in range(n):
        le = np.all(metrics <= metrics[i], axis=1)
        lt = np.any(metrics < metrics[i], axis=1)
        equal_before = np.all(metrics == metrics[i], axis=1) & (np.arange(n) < i)
        if not np.any((le & lt) | equal_before):
            keep.append(i)
    return np.array(keep, dtype=np.int64)


def prune_dominated(rows: PriceRows) -> PriceRows:
    """Drop rows that cannot rank first for any objective nor pass a cap another row fails (module
    docstring); a row that can supply more devices is never dropped for one that supplies fewer. On-demand
    rows that are the fallback of a kept spot row stay."""
    if len(rows) <= 1:
        return rows
    price = np.where(np.isnan(rows.usd_per_device_h), np.inf, rows.usd_per_device_h)
    unknown = np.array([k == "no carbon data" for k in rows.carbon])
    co2 = np.where(unknown, np.inf, rows.pue * rows.carbon_kg_per_kwh)
    is_spot = np.array([p == "spot" for p in rows.pricing])
    od = np.flatnonzero(~is_spot)
    sp = np.flatnonzero(is_spot)
    keep: list[int] = []
    if sp.size:
        fb = rows.fallback[sp]
        has = fb >= 0
        fb_safe = np.maximum(fb, 0)
        m = np.column_stack(
            [
                price[sp],
                np.where(has, price[fb_safe], np.inf),
                rows.pue[sp],
                co2[sp],
                np.where(has, rows.pue[fb_safe], np.inf),
                np.where(has, co2[fb_safe], np.inf),
                -rows.max_count[sp],
            ]
        )
        keep.extend(int(sp[i]) for i in _pareto_keep(m))
    needed = {int(rows.fallback[i]) for i in keep if rows.fallback[i] >= 0}
    if od.size:
        m = np.column_stack([price[od], rows.pue[od], co2[od], -rows.max_count[od]])
        keep.extend(int(od[i]) for i in _pareto_keep(m))
    keep.extend(j for j in needed if j not in keep)
    return rows.take(sorted(set(keep)))


def check_places(cat: Any, providers: Sequence[str] | None, regions: Sequence[str] | None) -> None:
    """Unknown provider or region names raise :class:`UnknownNameError` with close matches."""
    from mlcost.errors import UnknownNameError

    for prov in providers or ():
        if prov not in cat.providers():
            raise UnknownNameError("provider", prov, cat.providers())
    known = set(cat.regions())
    for reg in regions or ():
        if reg not in known:
            raise UnknownNameError("region", reg, known, extra_hint="'*' is a provider-wide price row")
