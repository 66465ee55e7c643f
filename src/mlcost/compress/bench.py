"""Speed, memory and size of each variant, measured on this machine.

The machine is shared and noisy, so timings are **interleaved**: every round times every variant once at every
batch size, in a freshly shuffled order, and the speed-up of a variant is the ratio of its median time to the
original's over the same rounds, with a bootstrap interval over rounds (see :mod:`mlcost.compress.stats`).
A slow period on the machine then hits both sides of the ratio instead of faking a gain.

One timing sample is the mean of ``k`` back-to-back calls, with ``k`` chosen in the warm-up so a sample of
the original lasts at least :data:`MIN_SAMPLE_S`; latency percentiles are over samples.

Peak memory: the process's peak resident set (``VmHWM``, reset through ``/proc/self/clear_refs``) during one
call at the largest batch, minus the resident set before it (after ``malloc_trim`` returned freed pages to the
OS), plus the variant's own weights in memory. Where
``/proc`` cannot be reset (not Linux), the activation part is not measured and the field says so.
"""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlcost.compress.stats import Interval, ratio_of_medians
from mlcost.compress.variants import Variant

#: Shortest timing sample. Units: s.
MIN_SAMPLE_S = 0.02


@dataclass
class Speed:
    """Timing of one variant at one batch size (Units in names)."""

    batch_size: int
    latency_p50_s: float
    latency_p95_s: float
    throughput_per_s: float
    speedup: Interval
    calls_per_sample: int
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "latency_p50_s": self.latency_p50_s,
            "latency_p95_s": self.latency_p95_s,
            "throughput_per_s": self.throughput_per_s,
            "speedup": self.speedup.to_dict(),
            "calls_per_sample": self.calls_per_sample,
            "samples": self.samples,
        }


def _call(variant: Variant, batch: dict[str, Any], k: int) -> float:
    assert variant.predict is not None
    start = time.perf_counter()
    for _ in range(k):
        variant.predict(batch)
    return (time.perf_counter() - start) / k


def measure_speed(
    variants: list[Variant],
    inputs: dict[int, dict[str, Any]],
    *,
    rounds: int,
    warmup: int = 2,
    seed: int = 0,
) -> dict[str, dict[int, Speed]]:
    """Interleaved timing of ``variants`` (the first is the baseline) at each batch size in ``inputs``."""
    import torch

    rng = np.random.default_rng(seed)
    base = variants[0]
    times: dict[str, dict[int, list[float]]] = {v.name: {b: [] for b in inputs} for v in variants}
    calls: dict[int, int] = {}
    with torch.inference_mode():
        for b, batch in inputs.items():
            for v in variants:
                for _ in range(warmup):
                    _call(v, batch, 1)
            one = min(_call(base, batch, 1) for _ in range(3))
            calls[b] = max(1, int(np.ceil(MIN_SAMPLE_S / max(one, 1e-6))))
        for _ in range(rounds):
            for vi in rng.permutation(len(variants)):
                v = variants[vi]
                for b, batch in inputs.items():
                    times[v.name][b].append(_call(v, batch, calls[b]))
    out: dict[str, dict[int, Speed]] = {}
    for v in variants:
        out[v.name] = {}
        for b in inputs:
            t = np.array(times[v.name][b])
            out[v.name][b] = Speed(
                batch_size=b,
                latency_p50_s=float(np.median(t)),
                latency_p95_s=float(np.quantile(t, 0.95)),
                throughput_per_s=float(b / np.median(t)),
                speedup=ratio_of_medians(times[base.name][b], t, seed=seed),
                calls_per_sample=calls[b],
                samples=len(t),
            )
    return out


# ---------------------------------------------------------------- memory and size
def _status_kib(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    m = re.search(rf"{field}:\s+(\d+)", text)
    return int(m.group(1)) if m else None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def weights_in_memory_bytes(variant: Variant) -> int:
    """Bytes of the variant's parameters and buffers (packed int8 weights included), or its engine file."""
    if variant.module is None:
        path = variant.artifacts.get("onnx_path")
        return int(Path(path).stat().st_size) if path else 0
    return serialized_size_bytes(variant)


def _release_free_memory() -> None:
    """Hand freed heap memory back to the OS (glibc ``malloc_trim``), so the next call's allocations show up
    as RSS growth instead of reusing pages freed by earlier calls."""
    import contextlib
    import ctypes

    # Not glibc: nothing is released and the growth may under-count reused pages.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def peak_memory_bytes(variant: Variant, batch: dict[str, Any]) -> tuple[int, str]:
    """(peak bytes of one call at ``batch``: weights + activation workspace, how it was measured)."""
    import gc

    import torch

    weights = weights_in_memory_bytes(variant)
    gc.collect()
    _release_free_memory()
    before = _status_kib("VmRSS")
    if before is None or not _reset_peak():
        return weights, "weights only (no /proc to measure the activation peak)"
    with torch.inference_mode():
        assert variant.predict is not None
        variant.predict(batch)
    peak = _status_kib("VmHWM") or before
    return weights + max(0, peak - before) * 1024, "weights + peak RSS growth during one call (VmHWM)"


def serialized_size_bytes(variant: Variant) -> int:
    """Size of what :func:`mlcost.compress.recipes.save_variant` writes for the weights."""
    import torch

    if variant.module is None:
        path = variant.artifacts.get("onnx_path")
        return int(Path(path).stat().st_size) if path else 0
    buf = io.BytesIO()
    torch.save(variant.module.state_dict(), buf)
    return buf.getbuffer().nbytes
