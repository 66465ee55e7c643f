"""Energy estimated from a power model × wall time, always labelled ``estimated``.

For CPUs the power is the socket's TDP scaled to the share of logical CPUs the run used
(``cores_used / cores_total``), so a 2-vCPU VM is charged 2 vCPUs' share of the socket, never the whole
socket. The CPU row is the one :func:`mlcost.catalog.host.match_cpu_row` picks in the catalog the caller
passes (the package catalog by default) for the host (this machine by default): a specific row by vendor and
ISA, else the generic row of its ISA scaled to its logical CPUs. With no row at all, the socket is assumed to be a typical cloud EPYC:
:data:`DEFAULT_SOCKET_TDP_W` over :data:`DEFAULT_SOCKET_LOGICAL_CPUS` logical CPUs (≈2.19 W per vCPU).
The estimate counts no DRAM, disk, network or facility (PUE) power; the detail says what was assumed.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass
from typing import Any

from mlcost.catalog import host as catalog_host
from mlcost.catalog.host import HostCpu
from mlcost.measure.meters.base import EnergyReading

#: Fallback socket: AMD EPYC 7763 (Milan), 280 W TDP, 64 cores / 128 threads (AMD product page, 2021).
DEFAULT_SOCKET_TDP_W = 280.0
DEFAULT_SOCKET_LOGICAL_CPUS = 128
DEFAULT_SOCKET_NAME = "AMD EPYC 7763 (280 W TDP, 128 threads)"


@dataclass(frozen=True)
class CpuPowerEstimate:
    """Power attributed to this process's CPUs.

    Attributes:
        socket_w: TDP of the whole socket. Units: W.
        cores_used: logical CPUs the run uses (affinity, capped by torch threads if torch is loaded).
        cores_total: logical CPUs of the socket the TDP belongs to.
        power_w: ``socket_w × cores_used / cores_total``. Units: W.
        explanation: one line stating every assumption.
    """

    socket_w: float
    cores_used: int
    cores_total: int
    power_w: float
    explanation: str


def cores_in_use() -> tuple[int, str]:
    """Logical CPUs this process can use: its CPU affinity, capped by torch's intra-op threads if torch
    is already imported (torch is never imported here). Returns (count, how it was found)."""
    try:
        affinity = len(os.sched_getaffinity(0))
        how = "CPU affinity"
    except AttributeError:  # macOS, Windows
        affinity = os.cpu_count() or 1
        how = "os.cpu_count()"
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            threads = int(torch.get_num_threads())
            if threads < affinity:
                return threads, f"torch.get_num_threads() = {threads} (affinity {affinity})"
        except Exception:
            pass
    return affinity, how


def _catalog_cpu_row(catalog: Any, host: HostCpu) -> tuple[Any, tuple[int, str] | None] | None:
    """The catalog's cpu row for ``host`` (:func:`mlcost.catalog.host.match_cpu_row`: by vendor and ISA,
    else the generic row of its ISA scaled to its logical CPUs) and the logical CPUs its TDP covers when
    the match says (None: read from the row). None without a row. Never raises."""
    try:
        from mlcost.catalog import builtin_catalog, match_cpu_row

        match = match_cpu_row(catalog if catalog is not None else builtin_catalog(), host)
    except Exception:
        return None
    if match is None:
        return None
    if match.generic and host.logical_cpus:
        return match.device, (host.logical_cpus, "generic per-logical-CPU row scaled to this host")
    if match.row.logical_cpus:
        return match.device, (match.row.logical_cpus, "logical_cpus of its cpus.csv row")
    return match.device, None


def _row_logical_cpus(row: Any) -> tuple[int, str] | None:
    """Logical CPUs the row's TDP covers: a count field, else 'N vCPU' in its name, else this machine's
    count when the row names no count (a row describing the machine itself)."""
    for attr in ("logical_cpus", "threads", "vcpus", "cores"):
        value = getattr(row, attr, None)
        if isinstance(value, (int, float)) and value > 0:
            return int(value), f"row field {attr}"
    match = re.search(r"(\d+)\s*v?cpus?\b", str(getattr(row, "name", "")), re.IGNORECASE)
    if match:
        return int(match.group(1)), "from the row name"
    count = os.cpu_count()
    return (count, "row taken as this whole machine") if count else None


def estimate_cpu_power(
    cores_used: int | None = None,
    cpu_model: str | None = None,
    *,
    catalog: Any = None,
    host: HostCpu | None = None,
) -> CpuPowerEstimate:
    """Power drawn by the CPUs this run uses, from the cpu row of ``catalog`` (None: the package catalog)
    matching ``host`` (None: this machine), or the stated default socket. ``cpu_model`` names the CPU in
    the explanation (default: the host's model name)."""
    if cores_used is None:
        cores_used, how = cores_in_use()
    else:
        how = "given"
    if host is None:
        host = catalog_host.detect_host()
    if cpu_model is None:
        cpu_model = host.model
    found = _catalog_cpu_row(catalog, host)
    row = found[0] if found is not None else None
    row_cpus = (found[1] or _row_logical_cpus(row)) if found is not None else None
    tdp = getattr(row, "tdp_w", None) if row is not None else None
    if row is not None and row_cpus and isinstance(tdp, (int, float)) and tdp > 0:
        socket_w, cores_total = float(tdp), row_cpus[0]
        basis = f"catalog row {getattr(row, 'id', '?')} dated {getattr(row, 'date', '?')}"
        socket = (
            f"{getattr(row, 'name', '?')}, {socket_w:g} W TDP over {cores_total} logical CPUs ({row_cpus[1]})"
        )
        excluded = "no PUE"
    else:
        socket_w, cores_total = DEFAULT_SOCKET_TDP_W, DEFAULT_SOCKET_LOGICAL_CPUS
        basis = f"no catalog row for CPU {cpu_model!r}; default socket"
        socket = DEFAULT_SOCKET_NAME
        excluded = "no DRAM/PUE"
    cores_used = max(1, min(cores_used, cores_total))
    power_w = socket_w * cores_used / cores_total
    explanation = (
        f"{cores_used}/{cores_total} logical CPUs ({how}) × {socket_w:g} W TDP = {power_w:.2f} W "
        f"[{basis}: {socket}; full TDP while running; {excluded}]"
    )
    return CpuPowerEstimate(socket_w, cores_used, cores_total, power_w, explanation)


def estimate_cpu_power_w(
    cores_used: int | None = None,
    cpu_model: str | None = None,
    *,
    catalog: Any = None,
    host: HostCpu | None = None,
) -> tuple[float, str]:
    """(power in W for the CPUs this run uses, explanation). See :func:`estimate_cpu_power`."""
    est = estimate_cpu_power(cores_used, cpu_model, catalog=catalog, host=host)
    return est.power_w, est.explanation


class EstimatedEnergyMeter:
    """An :class:`~mlcost.measure.meters.base.EnergyMeter` computing energy = power × wall time.

    Args:
        power_w: power of the whole device/socket. Units: W.
        cores_used / cores_total: when both given, ``power_w`` is scaled by ``cores_used / cores_total``.
        idle_w: constant power added for the run's share of idle/uncore power (default 0). Units: W.
        detail: what was assumed; stored in every reading.
    """

    name = "estimated"

    def __init__(
        self,
        power_w: float,
        *,
        cores_used: int | None = None,
        cores_total: int | None = None,
        idle_w: float = 0.0,
        detail: str = "",
    ) -> None:
        if power_w < 0 or idle_w < 0:
            raise ValueError("power_w and idle_w must be >= 0")
        share = 1.0
        if cores_used is not None and cores_total is not None:
            if cores_total <= 0 or cores_used <= 0:
                raise ValueError("cores_used and cores_total must be > 0")
            share = min(cores_used, cores_total) / cores_total
        self.power_w = power_w * share + idle_w
        if not detail:
            detail = f"{power_w:g} W" + (f" × {cores_used}/{cores_total} cores" if share != 1.0 else "")
            if idle_w:
                detail += f" + {idle_w:g} W idle share"
        self.detail = f"estimated {self.power_w:.2f} W × wall time: {detail}"
        self._t0_ns: int | None = None

    @classmethod
    def for_cpu(
        cls,
        cores_used: int | None = None,
        *,
        idle_w: float = 0.0,
        catalog: Any = None,
        host: HostCpu | None = None,
    ) -> EstimatedEnergyMeter:
        """A meter for this process's CPUs (see :func:`estimate_cpu_power`; ``catalog`` None = the package
        catalog, ``host`` None = this machine)."""
        est = estimate_cpu_power(cores_used, catalog=catalog, host=host)
        return cls(
            est.socket_w,
            cores_used=est.cores_used,
            cores_total=est.cores_total,
            idle_w=idle_w,
            detail=est.explanation,
        )

    def begin(self) -> None:
        self._t0_ns = time.perf_counter_ns()

    def end(self) -> EnergyReading:
        t1_ns = time.perf_counter_ns()
        if self._t0_ns is None:
            raise RuntimeError("EstimatedEnergyMeter.end() called without begin()")
        duration_s = (t1_ns - self._t0_ns) / 1e9
        return EnergyReading(
            energy_j=self.power_w * duration_s, source="estimated", detail=self.detail, duration_s=duration_s
        )
