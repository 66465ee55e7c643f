"""Facts about the world as versioned data files: devices, prices, carbon intensity, PUE, model presets and
efficiency profiles, every row with a source and a date. See :mod:`mlcost.catalog.loader`."""

from mlcost.catalog.loader import (
    Catalog,
    ModelRow,
    clear_cache,
    get_catalog,
    model_family,
    override_paths,
    register_profile,
)
from mlcost.catalog.schema import CarbonRow, Device, EfficiencyProfile, PriceRow, ProviderRow

__all__ = [
    "CarbonRow",
    "Catalog",
    "Device",
    "EfficiencyProfile",
    "ModelRow",
    "PriceRow",
    "ProviderRow",
    "clear_cache",
    "get_catalog",
    "model_family",
    "override_paths",
    "register_profile",
]
