"""What mlcost can see on this machine (``mlcost env``): CPU and what its ISA means for mlcost's levers,
cores, memory, GPUs, torch/transformers, energy counters, the ledger and the catalog.

Computes only; ``mlcost.cli.env`` renders. Imports no torch unless there is a sign of an NVIDIA GPU (or
``import_torch=True``), so it starts fast and works without torch installed.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from mlcost.measure import provenance as prov


def _has_nvidia_driver() -> bool:
    return Path("/proc/driver/nvidia").exists() or Path("/dev/nvidia0").exists()


def cpu_implications(flags: dict[str, bool]) -> list[str]:
    """What the ISA flags mean for mlcost's recommendations, one sentence each."""
    notes: list[str] = []
    if not flags.get("avx2"):
        notes.append("no AVX2: torch CPU kernels fall back to slow paths; expect low FLOP/s")
    if flags.get("amx_bf16") or flags.get("amx_tile"):
        notes.append("AMX: bf16/int8 matmuls have tile units; bf16 autocast can pay")
    elif flags.get("avx512_bf16"):
        notes.append("AVX512_BF16: bf16 dot products in hardware; bf16 autocast can pay")
    else:
        notes.append("no avx512_bf16/amx: bf16 autocast will be slow (emulated); keep fp32 on this CPU")
    if flags.get("avx512_vnni") or flags.get("avx_vnni") or flags.get("amx_int8"):
        notes.append("VNNI: int8 dot products in hardware; int8 quantization can speed up matmuls")
    else:
        notes.append(
            "no VNNI: int8 gains limited (smaller weights, fewer bytes moved; no int8 dot-product units)"
        )
    if flags.get("avx512f"):
        notes.append("AVX-512: wide vector units available")
    return notes


def torch_info(import_torch: bool | None = None) -> dict[str, Any]:
    """torch version and CUDA facts. Imports torch only when ``import_torch`` or an NVIDIA driver exists."""
    versions = prov.library_versions(("torch",))
    info: dict[str, Any] = {"installed": versions["torch"] is not None, "version": versions["torch"]}
    if not info["installed"]:
        info.update(
            cuda_available=False, cuda_version=None, note="torch not installed: pip install torch==2.13.0"
        )
        return info
    if import_torch is None:
        import_torch = _has_nvidia_driver()
    if not import_torch:
        info.update(
            cuda_available=False, cuda_version=None, note="no NVIDIA driver found: torch runs on the CPU"
        )
        return info
    try:
        import torch

        info.update(
            cuda_available=bool(torch.cuda.is_available()),
            cuda_version=torch.version.cuda,
            threads=int(torch.get_num_threads()),
        )
    except Exception as exc:
        info.update(cuda_available=False, cuda_version=None, note=f"import torch failed: {exc}")
    return info


def ledger_info() -> dict[str, Any]:
    """Where the ledger lives (from MLCOST_LEDGER or the default) and how many runs it holds."""
    from mlcost.measure.ledger import ENV_VAR, resolve_url

    url = resolve_url()
    info: dict[str, Any] = {"url": url, "from_env": bool(os.environ.get(ENV_VAR)), "runs": None}
    path = Path(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else None
    info["exists"] = path.exists() if path is not None else None
    if path is None or path.exists():
        try:
            from mlcost.measure.ledger import Ledger

            ledger = Ledger(url, read_only=True)
            info["runs"] = ledger.count()
            ledger.close()
        except Exception as exc:
            info["error"] = str(exc)
    return info


def catalog_info() -> dict[str, Any]:
    """Whether the catalog loads, its snapshot date and size. Never raises."""
    try:
        from mlcost.context import default_catalog

        catalog = default_catalog()
    except Exception as exc:
        return {"available": False, "error": f"{type(exc).__name__}: {exc}"}
    info: dict[str, Any] = {"available": True}
    for attr in ("snapshot_date", "date", "version"):
        value = getattr(catalog, attr, None)
        if isinstance(value, str):
            info[attr] = value
    devices = getattr(catalog, "devices", None)
    try:
        if callable(devices):
            devices = devices()
        info["devices"] = len(devices) if devices is not None else None
    except Exception:
        info["devices"] = None
    return info


def collect_env(import_torch: bool | None = None) -> dict[str, Any]:
    """Everything ``mlcost env`` shows, as one JSON-safe dict. Never raises for a missing library."""
    from mlcost.catalog.host import detect_host

    host = detect_host()
    flags = host.flag_map()
    torch = torch_info(import_torch)
    counters = prov.energy_counters()
    gpus = prov.gpus(import_torch=bool(torch.get("cuda_available")))
    if counters["nvml"] and counters["rapl"]:
        energy_note = "GPU energy from NVML, CPU energy from RAPL (measured)"
    elif counters["nvml"]:
        energy_note = "GPU energy measured with NVML; CPU energy will be estimated"
    elif counters["rapl"]:
        energy_note = "CPU energy measured with RAPL"
    else:
        energy_note = "no energy counters: energy will be estimated (power × time) and labelled so"
    return {
        "cpu": {
            "model": host.model,
            "isa": host.isa,
            "flags": flags,
            "implications": cpu_implications(flags),
        },
        "cores": prov.cpu_cores(),
        "memory_total_bytes": prov.memory_total_bytes(),
        "gpus": gpus,
        "torch": torch,
        "transformers": {
            "installed": importlib.util.find_spec("transformers") is not None,
            "version": prov.library_versions(("transformers",))["transformers"],
        },
        "energy": {**counters, "note": energy_note},
        "ledger": ledger_info(),
        "catalog": catalog_info(),
        "versions": prov.library_versions(),
        "python": prov.platform.python_version(),
        "hostname": prov.socket.gethostname(),
    }
