"""Cluster specification: which devices, how many, how connected, where and at what price."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from mlcost.spec import validate
from mlcost.spec._validate import (
    api_name,
    check_choice,
    check_positive,
    check_positive_int,
    from_dict_strict,
)

Pricing = Literal["on-demand", "spot"]
PRICINGS: tuple[str, ...] = ("on-demand", "spot")


@dataclass(frozen=True, kw_only=True)
class Cluster:
    """Devices and where they run. ``None`` fields are filled from the catalog when estimating, and
    every filled value is listed in the estimate's assumptions.

    Attributes:
        device: catalog device id (``mlcost devices``), or ``local`` for this machine's calibrated profile.
        count: devices in the job.
        devices_per_node: devices sharing the fast intra-node link (catalog's typical node if None).
        intra_node_bw_bytes_per_s: per-device, one-direction bandwidth inside a node. Units: bytes/s.
        inter_node_bw_bytes_per_s: per-device, one-direction bandwidth between nodes. Units: bytes/s.
        provider: cloud provider id for the price row (cheapest matching row if None).
        region: region for the price and carbon rows.
        pricing: ``on-demand`` or ``spot``.
        price_usd_per_device_h: overrides the catalog price. Units: USD per device-hour.
        pue: data-centre power usage effectiveness (facility energy / IT energy); catalog default if None.
        carbon_kg_per_kwh: overrides the carbon row. Units: kg CO2e per kWh.
    """

    device: str
    count: int = 1
    devices_per_node: int | None = None
    intra_node_bw_bytes_per_s: float | None = None
    inter_node_bw_bytes_per_s: float | None = None
    provider: str | None = None
    region: str | None = None
    pricing: Pricing = "on-demand"
    price_usd_per_device_h: float | None = None
    pue: float | None = None
    carbon_kg_per_kwh: float | None = None

    def __post_init__(self) -> None:
        own = "Cluster"
        check_positive_int(own, "count", self.count)
        if self.devices_per_node is not None:
            check_positive_int(own, "devices_per_node", self.devices_per_node)
        for field in ("intra_node_bw_bytes_per_s", "inter_node_bw_bytes_per_s", "pue"):
            if getattr(self, field) is not None:
                check_positive(own, field, getattr(self, field))
        for field in ("price_usd_per_device_h", "carbon_kg_per_kwh"):
            if getattr(self, field) is not None:
                check_positive(own, field, getattr(self, field), allow_zero=True)
        check_choice(own, "pricing", self.pricing, PRICINGS)
        if self.pue is not None:
            validate.pue(self.pue, api_name(own, "pue"))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cluster:
        return from_dict_strict(cls, data)  # type: ignore[no-any-return]

    def replace(self, **changes: Any) -> Cluster:
        return dataclasses.replace(self, **changes)
