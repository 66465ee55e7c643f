"""What this CPU can run fast: the ISA features that decide whether int8, bf16 or fp16 pay.

Read from ``/proc/cpuinfo`` (through :mod:`mlcost.measure.provenance`) and cross-checked with
``torch.backends.cpu.get_cpu_capability()``; never assumed from the CPU's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class CpuIsa:
    """ISA features of this CPU that matter for compressed inference.

    Attributes:
        model: CPU model string.
        torch_capability: what PyTorch's CPU kernels dispatch to (``AVX2``, ``AVX512``, ...).
        avx2 / avx512: vector widths.
        vnni: int8 dot-product instructions (AVX512_VNNI or AVX_VNNI).
        bf16: AVX512_BF16 or AMX-BF16 units.
        fp16: AVX512_FP16 or AMX-FP16 units.
        amx: AMX tiles.
    """

    model: str
    torch_capability: str
    avx2: bool
    avx512: bool
    vnni: bool
    bf16: bool
    fp16: bool
    amx: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def summary(self) -> str:
        feats = [
            name
            for name, on in (
                ("AVX2", self.avx2),
                ("AVX-512", self.avx512),
                ("VNNI", self.vnni),
                ("BF16", self.bf16),
                ("FP16", self.fp16),
                ("AMX", self.amx),
            )
            if on
        ]
        return f"{self.model} ({', '.join(feats) or 'no SIMD extensions found'})"

    def int8_note(self) -> str:
        if self.amx:
            return "AMX int8 tiles present"
        if self.vnni:
            return "VNNI int8 dot products present"
        return "no VNNI: int8 GEMMs fall back to slower AVX2 multiply-add sequences"

    def unit_for(self, precision: str) -> str | None:
        """None when the CPU has units for ``precision`` (bf16/fp16), else the reason it has not."""
        if precision == "bf16" and not self.bf16:
            return "no bf16 units on this CPU (neither AVX512_BF16 nor AMX-BF16 in /proc/cpuinfo)"
        if precision == "fp16" and not self.fp16:
            return "no fp16 units on this CPU (neither AVX512_FP16 nor AMX-FP16 in /proc/cpuinfo)"
        return None


def _flags() -> tuple[str, frozenset[str]]:
    """The CPU model and its flags, from the one host reader (:func:`mlcost.catalog.host.detect_host`)."""
    from mlcost.catalog.host import detect_host

    host = detect_host()
    return (host.model or "").strip() or "unknown CPU", host.flags


def detect_isa(flags: frozenset[str] | None = None, model: str | None = None) -> CpuIsa:
    """This CPU's features; ``flags``/``model`` override what /proc/cpuinfo says (for tests)."""
    found_model, found_flags = _flags()
    flags = found_flags if flags is None else flags
    try:
        import torch

        capability = str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # torch missing or too old: the flags still decide
        capability = "unknown"
    return CpuIsa(
        model=model or found_model,
        torch_capability=capability,
        avx2="avx2" in flags,
        avx512="avx512f" in flags,
        vnni=bool({"avx512_vnni", "avx_vnni", "amx_int8"} & flags),
        bf16=bool({"avx512_bf16", "amx_bf16"} & flags),
        fp16=bool({"avx512_fp16", "amx_fp16"} & flags),
        amx="amx_tile" in flags,
    )
