"""Where a measurement was taken: host, CPU and its ISA flags, cores, memory, GPUs, library versions, the
mlcost git commit and which energy counters exist. Stored with every run record.

Everything here is fast (no subprocess except one ``git`` call with a timeout; torch is consulted only if
already imported, unless asked) and never raises: a fact that cannot be read is ``None``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

#: ISA flags that change what mlcost recommends (as spelled in /proc/cpuinfo).
FLAGS_OF_INTEREST: tuple[str, ...] = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_bf16",
    "amx_tile",
    "amx_int8",
)

LIBRARIES: tuple[str, ...] = ("mlcost", "torch", "transformers", "numpy", "sqlalchemy")


def _safe(fn: Any, default: Any = None) -> Any:
    try:
        return fn()
    except Exception:
        return default


def _proc_cpuinfo() -> tuple[str | None, frozenset[str]]:
    """Model and flags from the one CPU reader, :func:`mlcost.catalog.host.detect_host`."""
    from mlcost.catalog.host import detect_host

    host = detect_host()
    return host.model, host.flags


def cpu_model_name() -> str | None:
    """The CPU model string, e.g. 'AMD EPYC 7B13', or None."""
    return _proc_cpuinfo()[0]


def all_cpu_flags() -> frozenset[str]:
    """Every ISA flag of this CPU (``/proc/cpuinfo``, else py-cpuinfo): the one CPU-flag reader."""
    return _proc_cpuinfo()[1]


def cpu_flags() -> dict[str, bool]:
    """Presence of each flag in :data:`FLAGS_OF_INTEREST`."""
    flags = _proc_cpuinfo()[1]
    return {flag: flag in flags for flag in FLAGS_OF_INTEREST}


def cpu_cores() -> dict[str, int | None]:
    """Logical CPUs of the machine, physical cores, and logical CPUs this process may use (affinity)."""
    import psutil

    affinity = _safe(lambda: len(os.sched_getaffinity(0)), os.cpu_count())
    return {
        "logical": os.cpu_count(),
        "physical": _safe(lambda: psutil.cpu_count(logical=False)),
        "affinity": affinity,
    }


def memory_total_bytes() -> int | None:
    """Physical memory of the machine. Units: bytes."""
    import psutil

    return _safe(lambda: int(psutil.virtual_memory().total))


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str | None]:
    """Installed version of each distribution (None when absent), read from metadata: imports nothing."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


@functools.lru_cache(maxsize=1)
def git_commit() -> dict[str, Any] | None:
    """mlcost's git commit and whether tracked files are modified, when run from a checkout; else None."""
    pkg_dir = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=pkg_dir, capture_output=True, text=True, timeout=2, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=pkg_dir,
            capture_output=True,
            text=True,
            timeout=2,
            check=True,
        ).stdout.strip()
    except Exception:
        return None
    return {"commit": head, "dirty": bool(dirty)} if head else None


def gpus(import_torch: bool = False) -> list[dict[str, Any]]:
    """GPUs seen by torch.cuda (if torch is imported, or ``import_torch``) merged with NVML facts."""
    from mlcost.measure.meters.nvml import nvml_gpus

    found: list[dict[str, Any]] = []
    torch = sys.modules.get("torch")
    if torch is None and import_torch:
        torch = _safe(lambda: __import__("torch"))
    if torch is not None:
        try:
            if torch.cuda.is_available():
                for i in range(torch.cuda.device_count()):
                    props = torch.cuda.get_device_properties(i)
                    found.append(
                        {
                            "index": i,
                            "name": props.name,
                            "memory_bytes": int(props.total_memory),
                            "capability": f"{props.major}.{props.minor}",
                            "source": "torch.cuda",
                        }
                    )
        except Exception:
            pass
    for g in _safe(nvml_gpus, []):
        match = next((f for f in found if f["index"] == g["index"]), None)
        if match is None:
            found.append({**g, "source": "nvml"})
        else:
            match.update({"driver": g["driver"], "energy_counter": g["energy_counter"]})
    return found


def energy_counters() -> dict[str, bool]:
    """Which measured energy sources exist here (otherwise energy is estimated)."""
    from mlcost.measure.meters.nvml import nvml_available
    from mlcost.measure.meters.rapl import rapl_available

    return {"nvml": bool(_safe(nvml_available, False)), "rapl": bool(_safe(rapl_available, False))}


def collect_provenance(import_torch: bool = False) -> dict[str, Any]:
    """All of the above as one JSON-safe dict. Never raises."""
    torch = sys.modules.get("torch")
    torch_info: dict[str, Any] | None = None
    if torch is not None:
        torch_info = {
            "cuda": _safe(lambda: torch.version.cuda),
            "threads": _safe(lambda: int(torch.get_num_threads())),
        }
    return {
        "collected_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hostname": _safe(socket.gethostname),
        "pid": os.getpid(),
        "os": _safe(lambda: f"{platform.system()} {platform.release()}"),
        "python": platform.python_version(),
        "cpu": {"model": cpu_model_name(), "flags": cpu_flags(), "machine": platform.machine()},
        "cores": _safe(cpu_cores, {}),
        "memory_total_bytes": memory_total_bytes(),
        "gpus": _safe(lambda: gpus(import_torch), []),
        "versions": _safe(library_versions, {}),
        "torch": torch_info,
        "git": _safe(git_commit),
        "energy_counters": _safe(energy_counters, {}),
    }
