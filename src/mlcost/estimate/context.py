"""Resolve a :class:`~mlcost.spec.Cluster` against the catalog: the device row, its efficiency profile,
the price, carbon and PUE rows — each recorded as an :class:`Assumption` so nothing is silent."""

from __future__ import annotations

from dataclasses import dataclass

from mlcost.catalog.loader import builtin_catalog
from mlcost.catalog.protocol import CatalogLike
from mlcost.catalog.schema import Device, EfficiencyProfile
from mlcost.errors import MlcostError, SpecError
from mlcost.estimate.result import Assumption
from mlcost.spec.cluster import Cluster


@dataclass(frozen=True)
class Hardware:
    """A cluster with every default filled in (units in names)."""

    device: Device
    profile: EfficiencyProfile
    count: int
    devices_per_node: int
    intra_bw_bytes_per_s: float
    inter_bw_bytes_per_s: float
    price_usd_per_device_h: float | None
    pue: float
    carbon_kg_per_kwh: float
    provider: str | None
    region: str | None
    pricing: str
    assumptions: tuple[Assumption, ...]


def framework_families(cat: CatalogLike) -> tuple[str, ...]:
    """Framework families the catalog has profiles for: rows keyed ``<device>/<family>`` in
    efficiency.toml (data, not code); without ``--framework`` the device's own profile applies."""
    return tuple(sorted({p.device.split("/", 1)[1] for p in cat.profiles() if "/" in p.device}))


def check_framework(cat: CatalogLike, framework: str) -> None:
    """Raise the unknown-name error (with the closest families) unless the catalog has ``framework``."""
    from mlcost.errors import UnknownNameError

    families = framework_families(cat)
    if framework not in families:
        raise UnknownNameError(
            "framework family",
            framework,
            families,
            extra_hint="--framework picks a family of efficiency profiles (catalog efficiency.toml)",
        )


def framework_profile(cat: CatalogLike, device_id: str, framework: str) -> EfficiencyProfile:
    """The efficiency profile of ``framework`` on ``device_id`` (row ``<device>/<framework>``), or the
    device's own profile when that family has no row for this device (the assumption says so)."""
    check_framework(cat, framework)
    by_key = {p.device: p for p in cat.profiles()}
    key = f"{device_id}/{framework}"
    return by_key[key] if key in by_key else cat.efficiency(device_id)


def resolve_hardware(
    cluster: Cluster,
    catalog: CatalogLike | None = None,
    profile: EfficiencyProfile | None = None,
    framework: str | None = None,
) -> Hardware:
    """Fill a cluster's ``None`` fields from ``catalog`` (None = the built-in package catalog, never the
    user's files: the CLI passes :func:`mlcost.context.default_catalog`); raise for unknown names.
    ``framework`` picks the (device, framework family) efficiency profile (:func:`framework_profile`)."""
    cat = catalog if catalog is not None else builtin_catalog()
    device = cat.device(cluster.device)
    if profile is None and framework is not None:
        profile = framework_profile(cat, device.id, framework)
    prof = profile or cat.efficiency(device.id)
    notes: list[Assumption] = [
        Assumption("device", device.id, f"{device.name}; {device.source} ({device.date})"),
        Assumption(
            "efficiency_profile",
            prof.device,
            f"{prof.source} ({prof.date})"
            + (
                ""
                if prof.device.split("/")[0] == device.id
                else f"; fallback for {device.id}"
                + (f" (no {framework} profile for it)" if framework else "")
            ),
        ),
    ]
    if framework is not None and prof.device != f"{device.id}/{framework}":
        notes.append(
            Assumption(
                "framework",
                framework,
                f"no {framework} profile for {device.id} in the catalog: the device's own profile applies",
            )
        )
    elif framework is not None:
        notes.append(Assumption("framework", framework, "framework-family profile " + prof.device))
    per_node = cluster.devices_per_node or device.devices_per_node
    if cluster.devices_per_node is None:
        notes.append(Assumption("devices_per_node", per_node, f"typical node of {device.id} (catalog)"))
    intra = cluster.intra_node_bw_bytes_per_s or device.intra_node_bw_bytes_per_s
    inter = cluster.inter_node_bw_bytes_per_s or device.inter_node_bw_bytes_per_s
    if cluster.intra_node_bw_bytes_per_s is None:
        notes.append(Assumption("intra_node_bw_bytes_per_s", intra, f"catalog row of {device.id}"))
    if cluster.inter_node_bw_bytes_per_s is None:
        notes.append(Assumption("inter_node_bw_bytes_per_s", inter, f"catalog row of {device.id}"))

    price: float | None
    provider, region = cluster.provider, cluster.region
    if cluster.price_usd_per_device_h is not None:
        price = cluster.price_usd_per_device_h
        notes.append(Assumption("price_usd_per_device_h", price, "given by the user"))
    else:
        try:
            row = cat.price(
                device.id, provider=provider, region=region, pricing=cluster.pricing, count=cluster.count
            )
        except MlcostError as exc:
            if provider is not None or region is not None:
                raise
            price = None
            notes.append(
                Assumption("price_usd_per_device_h", None, f"no price in the catalog: {exc.message}")
            )
        else:
            price = row.usd_per_device_h
            provider, region = row.provider, row.region
            notes.append(
                Assumption(
                    "price_usd_per_device_h",
                    price,
                    f"{row.provider} {row.region} {row.pricing} {row.instance}: {row.source} ({row.date})"
                    + ("" if cluster.provider else "; cheapest matching row"),
                )
            )
    if cluster.pue is not None:
        pue = cluster.pue
        notes.append(Assumption("pue", pue, "given by the user"))
    else:
        prow = cat.pue(provider)
        pue = prow.pue
        notes.append(Assumption("pue", pue, f"{prow.provider}: {prow.source} ({prow.date})"))
    if cluster.carbon_kg_per_kwh is not None:
        carbon = cluster.carbon_kg_per_kwh
        notes.append(Assumption("carbon_kg_per_kwh", carbon, "given by the user"))
    else:
        crow = cat.carbon(zone=region if region not in (None, "*") else None, provider=provider)
        carbon = crow.kg_co2_per_kwh
        notes.append(
            Assumption(
                "carbon_kg_per_kwh", carbon, f"zone {crow.zone} {crow.provider}: {crow.source} ({crow.date})"
            )
        )
    return Hardware(
        device=device,
        profile=prof,
        count=cluster.count,
        devices_per_node=per_node,
        intra_bw_bytes_per_s=intra,
        inter_bw_bytes_per_s=inter,
        price_usd_per_device_h=price,
        pue=pue,
        carbon_kg_per_kwh=carbon,
        provider=provider,
        region=region,
        pricing=cluster.pricing,
        assumptions=tuple(notes),
    )


def peak_flops_per_s(device: Device, precision: str) -> float:
    """Dense peak for ``precision`` or a SpecError listing what the device supports."""
    peak = device.peak_for(precision)
    if peak is None:
        supported = sorted(k for k in device.peak_flops_per_s)
        raise SpecError(
            f"{device.id} has no {precision} units",
            hint=f"choose --precision from {', '.join(supported)}",
        )
    return peak


#: Achievable large-GEMM throughput of fp8 relative to bf16, as fractions of their own peaks: H100 SXM fp8
#: 1403/1979 TF/s (71%) vs bf16 795/989 TF/s (80%) (stas00/ml-engineering, docs/reference/hardware.md).
FP8_MATMUL_EFF_SCALE = (1403 / 1979) / (795 / 989)


#: Bytes moved per element to quantize a GEMM operand to fp8 with per-tensor current scaling (Transformer
#: Engine ``Float8CurrentScaling``, torchao's dynamic tensorwise scaling): an amax pass reads the bf16 tensor
#: (2), the cast reads it again (2) and writes the fp8 copy and, for Hopper's wgrad GEMM (FP8 GEMMs take
#: K-major operands only), its transpose (1 + 1). Each GEMM input is quantized in the forward, each output
#: gradient in the backward (mlcost.estimate.flops.GemmOperands).
FP8_QUANTIZE_BYTES_PER_ELEMENT = 6.0


def compute_peaks(device: Device, precision: str) -> dict[str, float]:
    """Kernel inputs that depend on the compute precision: the dense peak (MFU's denominator), the peak
    attention runs at, the GEMM efficiency scale and the bytes per element that quantizing a GEMM operand
    moves. fp8 training (Transformer Engine style) runs only the linear layers in fp8, at a lower fraction of
    its peak, and quantizes their inputs and output gradients (FP8_QUANTIZE_BYTES_PER_ELEMENT); attention
    stays in bf16 (fp16 without bf16)."""
    peak = peak_flops_per_s(device, precision)
    if precision != "fp8":
        return {
            "peak_flops_per_s": peak,
            "attention_peak_flops_per_s": peak,
            "matmul_eff_scale": 1.0,
            "quantize_bytes_per_element": 0.0,
        }
    attention_peak = device.peak_for("bf16") or device.peak_for("fp16") or peak
    return {
        "peak_flops_per_s": peak,
        "attention_peak_flops_per_s": attention_peak,
        "matmul_eff_scale": FP8_MATMUL_EFF_SCALE,
        "quantize_bytes_per_element": FP8_QUANTIZE_BYTES_PER_ELEMENT,
    }
