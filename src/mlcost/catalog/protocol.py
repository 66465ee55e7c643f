"""What library code needs from a catalog: :class:`CatalogLike`.

:class:`mlcost.catalog.Catalog` implements it; so can a test double or a wrapper (calibration adds a ``local``
device this way). Estimate, plan, finance and calibrate functions take ``catalog: CatalogLike | None``;
``None`` means the built-in package catalog (:func:`mlcost.catalog.builtin_catalog`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from mlcost.catalog.schema import (
        CarbonRow,
        CpuRow,
        Device,
        EfficiencyProfile,
        EngineProfile,
        ModelRow,
        PriceRow,
        ProviderRow,
    )
    from mlcost.spec.model import ModelSpec


@runtime_checkable
class CatalogLike(Protocol):
    """The query API of a catalog (units as in :mod:`mlcost.catalog.schema`)."""

    def device(self, device_id: str) -> Device: ...

    def devices(self) -> list[Device]: ...

    def cpu_rows(self) -> list[CpuRow]: ...

    def efficiency(self, device_id: str) -> EfficiencyProfile: ...

    def profiles(self) -> list[EfficiencyProfile]: ...

    def engine_profile(self, engine: str, device: str | Device) -> EngineProfile: ...

    def engine_profiles(self) -> list[EngineProfile]: ...

    def model(self, name: str) -> ModelSpec: ...

    def model_row(self, name: str) -> ModelRow: ...

    def model_rows(self) -> list[ModelRow]: ...

    def providers(self) -> list[str]: ...

    def regions(self, provider: str | None = None) -> list[str]: ...

    def prices(
        self,
        device: str | None = None,
        provider: str | None = None,
        region: str | None = None,
        pricing: str | None = None,
    ) -> list[PriceRow]: ...

    def price(
        self,
        device: str,
        provider: str | None = None,
        region: str | None = None,
        pricing: str = "on-demand",
        count: int | None = None,
    ) -> PriceRow: ...

    def carbon(self, zone: str | None = None, provider: str | None = None) -> CarbonRow: ...

    def pue(self, provider: str | None = None) -> ProviderRow: ...

    @property
    def price_snapshot_date(self) -> str: ...

    @property
    def price_date_range(self) -> tuple[str, str]: ...
