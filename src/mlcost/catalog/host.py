"""Which catalog row describes this host's CPU: the one CPU-flags reader of mlcost and host matching.

:func:`parse_cpuinfo` reads ``/proc/cpuinfo`` text (x86 ``vendor_id``/``model name``/``flags``; Arm
``CPU implementer``/``Features``) into a :class:`HostCpu`; :func:`detect_host` reads this machine's (once).
:func:`match_cpu_row` picks the catalog row for a host:

1. a specific row of ``cpus.csv`` whose vendor, instruction-set level (:func:`isa_level`: AMX >
   AVX-512 with BF16 > AVX-512 > AVX2+FMA > baseline), model words and logical-CPU count all match — never
   the calibrated ``local`` row, never "the only CPU row";
2. else the generic row of the detected ISA level (``cpu-generic-<isa>``), whose per-logical-CPU figures are
   scaled to the host and whose peaks come from the ISA (FLOPs per cycle at an assumed clock), labelled as such.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcost.catalog.loader import LOCAL_ID
from mlcost.catalog.protocol import CatalogLike
from mlcost.catalog.schema import ISA_LEVELS, CpuRow, Device

#: ISA flags that change what mlcost predicts or recommends (spelled as in /proc/cpuinfo).
RELEVANT_FLAGS: tuple[str, ...] = (
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "amx_fp16",
    "asimd",
    "sve",
    "bf16",
    "i8mm",
)

_VENDORS = {"genuineintel": "intel", "authenticamd": "amd", "hygongenuine": "hygon"}
_ISA_NAMES = {
    "baseline": "baseline (no AVX2+FMA)",
    "avx2": "AVX2+FMA",
    "avx512": "AVX-512",
    "avx512_bf16": "AVX-512 with BF16/VNNI",
    "amx": "AMX (AVX-512, BF16, VNNI)",
}


def isa_level(flags: frozenset[str] | set[str]) -> str:
    """The instruction-set level of a set of CPU flags, one of :data:`~mlcost.catalog.schema.ISA_LEVELS`."""
    if {"amx_tile", "amx_bf16"} <= flags:
        return "amx"
    if "avx512f" in flags and "avx512_bf16" in flags:
        return "avx512_bf16"
    if "avx512f" in flags:
        return "avx512"
    if {"avx2", "fma"} <= flags:
        return "avx2"
    return "baseline"


def isa_name(isa: str) -> str:
    """A display name of an ISA level: ``avx2`` → ``AVX2+FMA``."""
    return _ISA_NAMES.get(isa, isa)


@dataclass(frozen=True, kw_only=True)
class HostCpu:
    """A host's CPU identity.

    Attributes:
        model: the CPU model name (``model name`` of /proc/cpuinfo), or None.
        vendor: ``intel``, ``amd``, ``arm`` ... (lower case), or None.
        flags: every ISA flag the kernel lists.
        logical_cpus: logical CPUs the process may use, or None.
        memory_bytes: total RAM, or None. Units: bytes.
    """

    model: str | None
    vendor: str | None
    flags: frozenset[str]
    logical_cpus: int | None = None
    memory_bytes: float | None = None

    @property
    def isa(self) -> str:
        return isa_level(self.flags)

    def flag_map(self) -> dict[str, bool]:
        """The :data:`RELEVANT_FLAGS`, each present or not."""
        return {f: f in self.flags for f in RELEVANT_FLAGS}

    def identity(self) -> dict[str, Any]:
        """What a calibration records about the host: model, vendor, ISA, relevant flags, logical CPUs."""
        return {
            "cpu_model": self.model,
            "vendor": self.vendor,
            "isa": self.isa,
            "flags": sorted(f for f in RELEVANT_FLAGS if f in self.flags),
            "logical_cpus": self.logical_cpus,
        }

    def differs_from(self, identity: dict[str, Any]) -> str | None:
        """Why a recorded :meth:`identity` is another CPU (``"CPU model 'X' != 'Y'"``), or None if the same."""
        mine = self.identity()
        for key, what in (
            ("cpu_model", "CPU model"),
            ("isa", "ISA"),
            ("flags", "ISA flags"),
            ("logical_cpus", "logical CPUs"),
        ):
            if key not in identity:
                return f"no {what} recorded"
            theirs = identity[key]
            if key == "flags":
                theirs = sorted(theirs or [])
            if theirs != mine[key]:
                return f"{what} {theirs!r} there, {mine[key]!r} here"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "flags": sorted(self.flags)}


def parse_cpuinfo(
    text: str, *, logical_cpus: int | None = None, memory_bytes: float | None = None
) -> HostCpu:
    """A :class:`HostCpu` from ``/proc/cpuinfo`` text (the first processor's fields; logical CPUs = the
    number of ``processor`` entries unless given)."""
    model = vendor = None
    flags: frozenset[str] | None = None
    processors = 0
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "processor":
            processors += 1
        elif key == "model name" and model is None:
            model = value
        elif key == "vendor_id" and vendor is None:
            vendor = _VENDORS.get(value.lower(), value.lower())
        elif key == "cpu implementer" and vendor is None:
            vendor = "arm"
        elif key in ("flags", "features") and flags is None:
            flags = frozenset(value.lower().split())
    return HostCpu(
        model=model,
        vendor=vendor,
        flags=flags or frozenset(),
        logical_cpus=logical_cpus if logical_cpus is not None else (processors or None),
        memory_bytes=memory_bytes,
    )


def _usable_cpus() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def _memory_bytes() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return float(line.split()[1]) * 1024.0
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return float(psutil.virtual_memory().total)
    except Exception:
        return None


def read_host_cpu(path: str | Path = "/proc/cpuinfo") -> HostCpu:
    """This machine's CPU from ``path``; without it (macOS, Windows) from py-cpuinfo (extra ``cpuinfo``)
    or ``platform``. Never raises."""
    import platform

    cpus, mem = _usable_cpus(), _memory_bytes()
    try:
        host = parse_cpuinfo(Path(path).read_text(errors="replace"), logical_cpus=cpus, memory_bytes=mem)
        if host.model and host.flags:
            return host
    except OSError:
        host = None
    try:
        import cpuinfo  # py-cpuinfo: the cpuinfo extra

        info = cpuinfo.get_cpu_info()
        vendor = str(info.get("vendor_id_raw", "")).lower()
        return HostCpu(
            model=info.get("brand_raw") or (host.model if host else None),
            vendor=_VENDORS.get(vendor, vendor or None),
            flags=frozenset(info.get("flags", [])) or (host.flags if host else frozenset()),
            logical_cpus=cpus,
            memory_bytes=mem,
        )
    except Exception:
        pass
    if host is not None:
        return host
    return HostCpu(
        model=platform.processor() or None,
        vendor=None,
        flags=frozenset(),
        logical_cpus=cpus,
        memory_bytes=mem,
    )


@functools.lru_cache(maxsize=1)
def detect_host() -> HostCpu:
    """This machine's CPU, read once per process (:func:`read_host_cpu`)."""
    return read_host_cpu()


def cpu_flags() -> frozenset[str]:
    """This machine's CPU flags (the one reader: :func:`detect_host`)."""
    return detect_host().flags


@dataclass(frozen=True, kw_only=True)
class CpuMatch:
    """The catalog row for a host.

    Attributes:
        device: the device row to use (a generic row scaled to the host's logical CPUs).
        row: the ``cpus.csv`` row that matched.
        generic: True when no specific row matched and the figures come from the ISA level.
        label: how the row was chosen, for assumptions and warnings.
    """

    device: Device
    row: CpuRow
    generic: bool
    label: str


def _specific(row: CpuRow, host: HostCpu) -> bool:
    model = (host.model or "").lower()
    return (
        not row.per_logical_cpu
        and row.device != LOCAL_ID
        and (not row.vendor or row.vendor == host.vendor)
        and row.isa == host.isa
        and all(w in model for w in row.model_words.lower().split())
        and (row.logical_cpus is None or row.logical_cpus == host.logical_cpus)
    )


def scale_generic(device: Device, row: CpuRow, host: HostCpu) -> Device:
    """A per-logical-CPU generic row scaled to the host (memory from the host when known)."""
    n = host.logical_cpus or 1
    return dataclasses.replace(
        device,
        name=f"{device.name} × {n} logical CPUs (peaks from the {isa_name(row.isa)} ISA, not measured)",
        peak_flops_per_s={k: v * n for k, v in device.peak_flops_per_s.items()},
        memory_bytes=host.memory_bytes if host.memory_bytes else device.memory_bytes * n,
        mem_bw_bytes_per_s=device.mem_bw_bytes_per_s * n,
        tdp_w=device.tdp_w * n,
        idle_w=device.idle_w * n if device.idle_w is not None else None,
        intra_node_bw_bytes_per_s=device.intra_node_bw_bytes_per_s * n,
    )


def match_cpu_row(catalog: CatalogLike, host: HostCpu) -> CpuMatch | None:
    """The catalog row describing ``host``: a specific row by vendor, ISA, model words and logical CPUs,
    else the generic row of the host's ISA level (or the best level below it). None without cpu rows."""
    rows = catalog.cpu_rows()
    specific = sorted(
        (r for r in rows if _specific(r, host)),
        key=lambda r: (-len(r.model_words.split()), r.logical_cpus is None, r.device),
    )
    if specific:
        row = specific[0]
        label = f"catalog row {row.device} ({row.vendor or 'any vendor'}, {isa_name(row.isa)}"
        label += f", model words {row.model_words!r})" if row.model_words else ")"
        return CpuMatch(device=catalog.device(row.device), row=row, generic=False, label=label)
    level = ISA_LEVELS.index(host.isa)
    generic = [r for r in rows if r.per_logical_cpu and ISA_LEVELS.index(r.isa) <= level]
    if not generic:
        return None
    row = max(generic, key=lambda r: (ISA_LEVELS.index(r.isa), r.device))
    device = scale_generic(catalog.device(row.device), row, host)
    label = (
        f"generic {isa_name(row.isa)} row {row.device} (no catalog row for this "
        f"{host.vendor or 'unknown-vendor'} {host.model or 'CPU'}; peaks from the ISA, not measured)"
    )
    return CpuMatch(device=device, row=row, generic=True, label=label)
