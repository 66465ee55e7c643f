"""Microbenchmarks of this machine with torch: what the estimator's peaks and efficiencies rest on.

Each figure comes from ``repeats`` timed runs after ``warmup`` untimed ones (``time.perf_counter``, CUDA
synchronised when on a GPU). The peaks (matmul, copy) take the **fastest** run: a peak is a capability,
and on a shared machine neighbours only ever slow a run down (the training steps the fit uses are the
fastest steps too, so both sides of the ratio see the undisturbed machine). Element-wise rates and the
all-reduce take the median.

* **matmul**: square ``n×n @ n×n`` GEMMs, 2·n³ FLOPs each, per size and dtype. Units: FLOP/s.
* **copy**: ``dst.copy_(src)`` of a large fp32 tensor, counting bytes read + written. Units: bytes/s.
* **GEMV**: ``torch.mv(W, x)`` with an fp32 weight matrix several times larger than the last-level cache,
  counting the weight bytes read: the rate at which batch-1 decode streams a model's weights (what
  serving's decode step is bound by). Its fastest run is the ``local`` device's memory bandwidth.
  Units: bytes/s.
* **weight stream by rows** (CPU): ``x @ W.T`` over a stack of transformer-shaped fp32 weights as large as
  the GEMV matrix, with x of M = 1, 2, 3, … 256 rows — a decode batch of M sequences, or M tokens of an
  iteration. The BLAS picks a different kernel per M; on CPUs a few rows (M = 2–3) often stream the
  weights two to three times slower than one row (a GEMV) or eight rows, so decode time is not monotone
  in the batch. Weight bytes / fastest time per M. Units: bytes/s.
* **first touch** (CPU): ``torch.ones`` of a fresh 64 MiB tensor, page faults included. Units: bytes/s.
* **elementwise**: ``add``, ``gelu``, ``layer_norm`` and ``softmax`` over a large fp32 tensor, counting the
  bytes read + written once (what :func:`mlcost.estimate.kernel.elementwise_bytes_per_token_layer` counts).
  Units: bytes/s.
* **all-reduce**: ``torch.distributed.all_reduce`` of fp32 tensors between 2 local processes (gloo on CPU,
  NCCL on CUDA), bus bandwidth = 2·(n−1)/n·S / t (the ring convention of :mod:`mlcost.estimate.timing`).
  Skipped (recorded as an error) if the processes cannot start.

torch is imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcost.errors import require

#: Square GEMM sizes of the default run and of ``--quick``.
MATMUL_SIZES: tuple[int, ...] = (128, 256, 512, 1024, 2048)
MATMUL_SIZES_QUICK: tuple[int, ...] = (128, 256, 512, 1024)
#: bf16 has no units on CPUs without AVX512_BF16/AMX: a few sizes are enough to record that honestly.
BF16_SIZES: tuple[int, ...] = (256, 512)


@dataclass(kw_only=True)
class MicrobenchResult:
    """Raw microbenchmark figures of one machine.

    Attributes:
        device: torch device measured (``cpu`` or ``cuda:N``).
        threads: torch intra-op threads used.
        matmul_flops_per_s: ``{dtype: {n: FLOP/s}}`` for square n×n GEMMs. Units: FLOP/s.
        copy_bytes_per_s: large-tensor copy, bytes read + written per second. Units: bytes/s.
        gemv_bytes_per_s: weight bytes streamed per second by a matrix-vector product whose matrix is
            larger than the last-level cache (0 when not measured). Units: bytes/s.
        gemv_weight_bytes: size of that matrix. Units: bytes.
        elementwise_bytes_per_s: ``{op: bytes/s}`` for add, gelu, layer_norm, softmax. Units: bytes/s.
        allreduce_bus_bytes_per_s: ``{message bytes: bus bytes/s}`` between 2 local processes. Units: bytes/s.
        allreduce_error: why the all-reduce was skipped, else None.
        seconds: wall time of the whole benchmark. Units: s.
        first_touch_bytes_per_s: writing a freshly allocated 64 MiB fp32 tensor (above malloc's mmap
            threshold: every page is faulted in and zeroed by the kernel), bytes per second; 0 if not
            measured. Units: bytes/s.
        weight_stream_bytes_per_s: ``{rows M: weight bytes/s}`` of ``x @ W.T`` with M rows over weights
            larger than the last-level cache (:func:`bench_weight_stream_rows`; empty when not
            measured). Units: bytes/s.
    """

    device: str
    threads: int
    matmul_flops_per_s: dict[str, dict[int, float]] = field(default_factory=dict)
    copy_bytes_per_s: float = 0.0
    gemv_bytes_per_s: float = 0.0
    gemv_weight_bytes: float = 0.0
    elementwise_bytes_per_s: dict[str, float] = field(default_factory=dict)
    allreduce_bus_bytes_per_s: dict[int, float] = field(default_factory=dict)
    allreduce_error: str | None = None
    seconds: float = 0.0
    first_touch_bytes_per_s: float = 0.0
    weight_stream_bytes_per_s: dict[int, float] = field(default_factory=dict)

    def peak_flops_per_s(self, dtype: str) -> float | None:
        """Best GEMM rate measured for ``dtype`` (the largest sizes reach it). Units: FLOP/s."""
        rates = self.matmul_flops_per_s.get(dtype)
        return max(rates.values()) if rates else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "threads": self.threads,
            "matmul_flops_per_s": {
                d: {str(n): r for n, r in v.items()} for d, v in self.matmul_flops_per_s.items()
            },
            "copy_bytes_per_s": self.copy_bytes_per_s,
            "gemv_bytes_per_s": self.gemv_bytes_per_s,
            "gemv_weight_bytes": self.gemv_weight_bytes,
            "elementwise_bytes_per_s": dict(self.elementwise_bytes_per_s),
            "allreduce_bus_bytes_per_s": {str(k): v for k, v in self.allreduce_bus_bytes_per_s.items()},
            "allreduce_error": self.allreduce_error,
            "seconds": self.seconds,
            "first_touch_bytes_per_s": self.first_touch_bytes_per_s,
            "weight_stream_bytes_per_s": {str(k): v for k, v in self.weight_stream_bytes_per_s.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MicrobenchResult:
        return cls(
            device=str(data["device"]),
            threads=int(data["threads"]),
            matmul_flops_per_s={
                d: {int(n): float(r) for n, r in v.items()}
                for d, v in data.get("matmul_flops_per_s", {}).items()
            },
            copy_bytes_per_s=float(data.get("copy_bytes_per_s", 0.0)),
            gemv_bytes_per_s=float(data.get("gemv_bytes_per_s", 0.0)),
            gemv_weight_bytes=float(data.get("gemv_weight_bytes", 0.0)),
            elementwise_bytes_per_s={k: float(v) for k, v in data.get("elementwise_bytes_per_s", {}).items()},
            allreduce_bus_bytes_per_s={
                int(k): float(v) for k, v in data.get("allreduce_bus_bytes_per_s", {}).items()
            },
            allreduce_error=data.get("allreduce_error"),
            seconds=float(data.get("seconds", 0.0)),
            first_touch_bytes_per_s=float(data.get("first_touch_bytes_per_s", 0.0)),
            weight_stream_bytes_per_s={
                int(k): float(v) for k, v in (data.get("weight_stream_bytes_per_s") or {}).items()
            },
        )


def _wall_times_s(
    fn: Callable[[], Any], *, warmup: int, repeats: int, sync: Callable[[], None]
) -> list[float]:
    """Wall time of each of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls. Units: s."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def time_median_s(fn: Callable[[], Any], *, warmup: int, repeats: int, sync: Callable[[], None]) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls after ``warmup`` calls. Units: s."""
    return statistics.median(_wall_times_s(fn, warmup=warmup, repeats=repeats, sync=sync))


def time_best_s(fn: Callable[[], Any], *, warmup: int, repeats: int, sync: Callable[[], None]) -> float:
    """Fastest wall time of ``fn`` over ``repeats`` calls after ``warmup`` calls. Units: s."""
    return min(_wall_times_s(fn, warmup=warmup, repeats=repeats, sync=sync))


def _sync_for(torch: Any, device: str) -> Callable[[], None]:
    if device.startswith("cuda"):
        return lambda: torch.cuda.synchronize(torch.device(device))
    return lambda: None


def bench_matmul(
    sizes: tuple[int, ...], dtype: str = "float32", *, device: str = "cpu", repeats: int = 5
) -> dict[int, float]:
    """GEMM rate per square size. Units: FLOP/s."""
    torch = require("torch", "mlcost calibrate", extra="measure")
    dt = getattr(torch, dtype)
    sync = _sync_for(torch, device)
    out: dict[int, float] = {}
    for n in sizes:
        a = torch.randn(n, n, device=device).to(dt)
        b = torch.randn(n, n, device=device).to(dt)
        flops = 2.0 * n**3
        # enough inner repetitions that one timed call lasts >= ~20 ms on a slow CPU
        inner = max(1, int(6e8 / flops)) if not device.startswith("cuda") else max(1, int(2e11 / flops))

        def run(a: Any = a, b: Any = b, inner: int = inner) -> None:
            for _ in range(inner):
                torch.mm(a, b)

        t = time_best_s(run, warmup=1, repeats=repeats, sync=sync)
        out[n] = flops * inner / t
    return out


def bench_memory(
    *, device: str = "cpu", numel: int = 2**25, repeats: int = 5
) -> tuple[float, dict[str, float]]:
    """Copy bandwidth and element-wise throughput (bytes read + written once). Units: bytes/s."""
    torch = require("torch", "mlcost calibrate", extra="measure")
    sync = _sync_for(torch, device)
    F = torch.nn.functional
    src = torch.randn(numel, device=device)
    dst = torch.empty_like(src)
    nbytes = 4.0 * numel
    copy = 2.0 * nbytes / time_best_s(lambda: dst.copy_(src), warmup=1, repeats=repeats, sync=sync)
    rows = src.view(-1, 1024)
    w = torch.ones(1024, device=device)
    bias = torch.zeros(1024, device=device)
    ops: dict[str, tuple[Callable[[], Any], float]] = {
        "add": (lambda: torch.add(src, src, out=dst), 3.0 * nbytes),
        "gelu": (lambda: F.gelu(src), 2.0 * nbytes),
        "layer_norm": (lambda: F.layer_norm(rows, (1024,), w, bias), 2.0 * nbytes),
        "softmax": (lambda: torch.softmax(rows, dim=-1), 2.0 * nbytes),
    }
    elem = {
        k: moved / time_median_s(fn, warmup=1, repeats=repeats, sync=sync) for k, (fn, moved) in ops.items()
    }
    return copy, elem


#: The GEMV matrix is at least this large and at least GEMV_LLC_MULTIPLE × the last-level cache. Units: bytes.
GEMV_MIN_WEIGHT_BYTES = 256 * 2**20
GEMV_LLC_MULTIPLE = 4
#: Columns of the GEMV matrix (a model's hidden size; rows follow from the size).
GEMV_COLS = 4096


def last_level_cache_bytes() -> int | None:
    """Size of the largest CPU cache the OS reports (``sysconf``, else Linux sysfs
    ``/sys/devices/system/cpu/cpu0/cache/index*/size``; None where neither does). Units: bytes."""
    sizes = []
    for name in ("SC_LEVEL4_CACHE_SIZE", "SC_LEVEL3_CACHE_SIZE", "SC_LEVEL2_CACHE_SIZE"):
        try:
            value = os.sysconf(name)
        except (ValueError, OSError, AttributeError):
            continue
        if value and value > 0:
            sizes.append(int(value))
    if not sizes:
        import glob

        units = {"K": 2**10, "M": 2**20, "G": 2**30}
        for path in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*/size"):
            try:
                text = Path(path).read_text().strip().upper()
                sizes.append(int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text))
            except (OSError, ValueError, IndexError):
                continue
    return max(sizes) if sizes else None


def gemv_weight_bytes(llc_bytes: int | None = None) -> int:
    """Size of the GEMV matrix: GEMV_LLC_MULTIPLE × the last-level cache, at least GEMV_MIN_WEIGHT_BYTES."""
    llc = last_level_cache_bytes() if llc_bytes is None else llc_bytes
    return max(GEMV_MIN_WEIGHT_BYTES, GEMV_LLC_MULTIPLE * (llc or 0))


def bench_gemv(
    *, weight_bytes: int | None = None, device: str = "cpu", repeats: int = 7
) -> tuple[float, float]:
    """Weight-streaming rate of ``torch.mv`` on an fp32 matrix larger than the last-level cache: bytes of
    the matrix / fastest time. Returns (bytes/s, matrix bytes). Units: bytes/s, bytes."""
    torch = require("torch", "mlcost calibrate", extra="measure")
    sync = _sync_for(torch, device)
    size = weight_bytes if weight_bytes is not None else gemv_weight_bytes()
    rows = max(1, int(size) // (4 * GEMV_COLS))
    w = torch.randn(rows, GEMV_COLS, device=device)
    x = torch.randn(GEMV_COLS, device=device)
    nbytes = float(w.numel() * w.element_size())
    t = time_best_s(lambda: torch.mv(w, x), warmup=2, repeats=repeats, sync=sync)
    return nbytes / t, nbytes


#: Rows (tokens of one iteration) at which the weight stream is timed; beyond the last one the GEMMs are
#: compute-bound on CPUs and the estimator's GEMM rate takes over.
STREAM_ROWS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256)
STREAM_ROWS_QUICK: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 16, 32, 64, 128, 256)
#: The default weight shapes: one SwiGLU block's 4 attention projections (d×d), gate and up (f×d) and down
#: (d×f) at the width of the model ``mlcost calibrate --serve`` serves (``mlcost.calibrate.serve.
#: CALIBRATION_MODEL``: d = 768, f = 2048), so the curve and the engine fit see the same GEMMs. The BLAS
#: kernel choice depends on the shape too: on the build VM M = 2 streamed at 0.45–0.62 of one row across
#: d×d, d×4d and 4d×d shapes at d = 768–4096 (2026-12-01); models far from this width carry that spread.
STREAM_D_MODEL = 768
STREAM_D_FF = 2048


def transformer_weight_shapes(d_model: int, d_ff: int, *, gated: bool = True) -> list[tuple[int, int]]:
    """``(out, in)`` shapes of one transformer block's linear layers: q, k, v, o, then the MLP."""
    mlp = [(d_ff, d_model)] * (2 if gated else 1) + [(d_model, d_ff)]
    return [(d_model, d_model)] * 4 + mlp


def bench_weight_stream_rows(
    *,
    rows: tuple[int, ...] = STREAM_ROWS,
    shapes: list[tuple[int, int]] | None = None,
    weight_bytes: int | None = None,
    device: str = "cpu",
    repeats: int = 5,
) -> dict[int, float]:
    """Weight bytes streamed per second by ``torch.nn.functional.linear`` with an fp32 input of M rows, for
    each M in ``rows``, over copies of ``shapes`` (``(out, in)``; default one Llama-style block at
    :data:`STREAM_D_MODEL`) stacked until they are as large as the GEMV matrix (several times the
    last-level cache, so every pass reads them from memory). Fastest of ``repeats`` passes. Units: bytes/s."""
    torch = require("torch", "mlcost calibrate", extra="measure")
    sync = _sync_for(torch, device)
    block = shapes or transformer_weight_shapes(STREAM_D_MODEL, STREAM_D_FF)
    if not block or any(o < 1 or i < 1 for o, i in block):
        raise ValueError(f"weight shapes must be positive (out, in) pairs, got {block}")
    target = weight_bytes if weight_bytes is not None else gemv_weight_bytes()
    per_block = 4.0 * sum(o * i for o, i in block)
    copies = max(1, -(-int(target) // int(per_block)))
    weights = [torch.randn(o, i, device=device) for _ in range(copies) for o, i in block]
    nbytes = per_block * copies
    linear = torch.nn.functional.linear
    inputs = {int(m): {i: torch.randn(m, i, device=device) for i in {i for _o, i in block}} for m in rows}

    def stream(m: int) -> None:
        for w in weights:
            linear(inputs[m][w.shape[1]], w)

    # Rounds over every M (not all repeats of one M in a row): a neighbour's burst that stalls the machine
    # for a second then costs one pass of a few Ms, and the fastest pass per M survives it.
    passes = {m: (lambda m=m: stream(m)) for m in inputs}
    best = {m: math.inf for m in inputs}
    with torch.inference_mode():
        for m in inputs:  # warm-up: kernel selection, first touch of the input
            _wall_times_s(passes[m], warmup=1, repeats=0, sync=sync)
        for _ in range(repeats):
            for m in inputs:
                best[m] = min(best[m], *_wall_times_s(passes[m], warmup=0, repeats=1, sync=sync))
    return {m: nbytes / t for m, t in best.items()}


def _allreduce_worker(rank: int, world: int, port: int, sizes: list[int], repeats: int, queue: Any) -> None:
    import torch
    import torch.distributed as dist

    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        out: dict[int, float] = {}
        for size in sizes:
            x = torch.ones(size // 4)
            for _ in range(2):
                dist.all_reduce(x)
            dist.barrier()
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                dist.all_reduce(x)
                times.append(time.perf_counter() - t0)
            out[size] = 2.0 * (world - 1) / world * size / statistics.median(times)
        if rank == 0:
            queue.put(out)
    finally:
        dist.destroy_process_group()


def bench_allreduce(
    sizes: tuple[int, ...] = (2**16, 2**24), *, repeats: int = 5, timeout_s: float = 60.0
) -> dict[int, float]:
    """All-reduce bus bandwidth between 2 local processes (gloo). Units: bytes/s. Raises on failure."""
    require("torch", "mlcost calibrate", extra="measure")
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    procs = [
        ctx.Process(target=_allreduce_worker, args=(r, 2, port, list(sizes), repeats, queue), daemon=True)
        for r in range(2)
    ]
    for p in procs:
        p.start()
    deadline = time.monotonic() + timeout_s
    for p in procs:
        p.join(max(0.1, deadline - time.monotonic()))
    alive = [p for p in procs if p.is_alive()]
    for p in alive:
        p.terminate()
    if alive or any(p.exitcode for p in procs) or queue.empty():
        raise RuntimeError("all-reduce worker processes failed or timed out")
    return dict(queue.get())


def bench_first_touch(*, numel: int = 2**24, repeats: int = 5) -> float:
    """Bytes per second of ``torch.ones(numel)``: a fresh fp32 tensor of 64 MiB (above glibc's 32 MiB mmap
    threshold, so its pages are new every time) written once — page faults and kernel zeroing included,
    the cost eager training pays for its large per-step allocations (fastest run). Units: bytes/s."""
    torch = require("torch", "mlcost calibrate", extra="measure")
    return 4.0 * numel / time_best_s(lambda: torch.ones(numel), warmup=1, repeats=repeats, sync=lambda: None)


def run_microbenchmarks(
    *,
    quick: bool = False,
    device: str = "cpu",
    allreduce: bool = True,
    progress: Callable[[str], None] | None = None,
) -> MicrobenchResult:
    """Run every microbenchmark (≈ 1 min on 2 CPU cores, ``quick`` ≈ 15 s)."""
    torch = require("torch", "mlcost calibrate", extra="measure")
    t0 = time.perf_counter()
    say = progress or (lambda _msg: None)
    res = MicrobenchResult(device=device, threads=int(torch.get_num_threads()))
    repeats = 3 if quick else 5
    say("matmul fp32")
    res.matmul_flops_per_s["float32"] = bench_matmul(
        MATMUL_SIZES_QUICK if quick else MATMUL_SIZES, "float32", device=device, repeats=repeats
    )
    say("matmul bf16")
    res.matmul_flops_per_s["bfloat16"] = bench_matmul(
        BF16_SIZES[:1] if quick else BF16_SIZES, "bfloat16", device=device, repeats=repeats
    )
    say("GEMV (weight streaming beyond the last-level cache)")
    res.gemv_bytes_per_s, res.gemv_weight_bytes = bench_gemv(device=device, repeats=repeats + 2)
    say("memory bandwidth and element-wise ops")
    res.copy_bytes_per_s, res.elementwise_bytes_per_s = bench_memory(
        device=device, numel=2**23 if quick else 2**25, repeats=repeats
    )
    if device == "cpu":
        res.first_touch_bytes_per_s = bench_first_touch(repeats=repeats)
        say("weight stream by rows (decode batch sizes)")
        res.weight_stream_bytes_per_s = bench_weight_stream_rows(
            rows=STREAM_ROWS_QUICK if quick else STREAM_ROWS, device=device, repeats=repeats
        )
    if allreduce:
        say("all-reduce between 2 local processes")
        try:
            res.allreduce_bus_bytes_per_s = bench_allreduce(
                (2**16, 2**22) if quick else (2**16, 2**20, 2**24), repeats=repeats
            )
        except Exception as exc:  # a sandbox without sockets or fork: record why and go on
            res.allreduce_error = f"{type(exc).__name__}: {exc}"
    else:
        res.allreduce_error = "skipped"
    res.seconds = time.perf_counter() - t0
    return res
