"""Facts about the world as versioned data files: devices, prices, carbon intensity, PUE, model presets and
efficiency profiles, every row with a source and a date. Pure: readers, schema and a query API; the
application's default catalog (user overrides, calibration) is assembled by :mod:`mlcost.context`.
See :mod:`mlcost.catalog.loader`."""

from mlcost.catalog.host import CpuMatch, HostCpu, detect_host, isa_level, match_cpu_row, parse_cpuinfo
from mlcost.catalog.loader import (
    LOCAL_ID,
    Catalog,
    ModelRow,
    builtin_catalog,
    clear_cache,
    get_catalog,
    model_family,
    register_profile,
    resolve_model,
)
from mlcost.catalog.protocol import CatalogLike
from mlcost.catalog.schema import (
    CarbonRow,
    CpuRow,
    Device,
    EfficiencyProfile,
    EngineProfile,
    PriceRow,
    ProviderRow,
)

__all__ = [
    "LOCAL_ID",
    "CarbonRow",
    "Catalog",
    "CatalogLike",
    "CpuMatch",
    "CpuRow",
    "Device",
    "EfficiencyProfile",
    "EngineProfile",
    "HostCpu",
    "ModelRow",
    "PriceRow",
    "ProviderRow",
    "builtin_catalog",
    "clear_cache",
    "detect_host",
    "get_catalog",
    "isa_level",
    "match_cpu_row",
    "model_family",
    "parse_cpuinfo",
    "register_profile",
    "resolve_model",
]
