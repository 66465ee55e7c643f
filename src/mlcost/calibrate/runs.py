"""Short real training runs of tiny GPT-2 and Llama models: the measurements the fit is scored on.

Each configuration runs in a **fresh spawned process** (one torch import each, ≈ 2 s): the peak resident
set size (RSS) of a process never shrinks back after a larger model ran in it (the allocator keeps freed
pages), so a shared process would under-report every later configuration's memory.

What is measured (the runner's meters: :class:`~mlcost.measure.meters.memory.RssMemoryMeter` for memory,
the runner's :class:`~mlcost.measure.meters.ClockTimer` around whole optimizer steps, in the one step loop
of :mod:`mlcost.measure.steps`):

* ``step_time_s``: median over ``steps`` AdamW steps (forward, backward, optimizer) after ``warmup``
  steps, fp32, synthetic tokens, the ``transformers`` model built from the spec (the runner's model).
* ``peak_delta_bytes``: peak RSS during build + training − RSS just before the model is built (torch
  and transformers already imported). This is the memory the training job itself adds, and what the
  estimator's ``memory_total_bytes`` predicts (weights, gradients, AdamW states, activations, logits,
  plus ``framework_overhead_bytes`` for allocator slack and autograd buffers).
* ``baseline_rss_bytes``: that RSS before the build (the torch runtime), recorded for provenance.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass
from typing import Any

from mlcost.spec.job import TrainJob
from mlcost.spec.model import ModelSpec


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """One small training configuration (element counts; ``family`` is ``gpt2`` or ``llama``)."""

    family: str
    n_layers: int
    d_model: int
    seq_len: int
    micro_batch: int
    vocab_size: int = 2048

    @property
    def label(self) -> str:
        label = f"{self.family} L{self.n_layers} d{self.d_model} s{self.seq_len} b{self.micro_batch}"
        return label if self.vocab_size == 2048 else f"{label} V{self.vocab_size}"

    def spec(self) -> ModelSpec:
        """The ModelSpec: GPT-2 style (learned positions, GELU, LayerNorm, biases, tied) or Llama style
        (RoPE, SwiGLU with d_ff = 8/3·d rounded to 64, RMSNorm, untied)."""
        heads = max(2, self.d_model // 64)
        name = f"{self.family}-L{self.n_layers}-d{self.d_model}"
        if self.family == "gpt2":
            return ModelSpec(
                name=name,
                n_layers=self.n_layers,
                d_model=self.d_model,
                n_heads=heads,
                d_ff=4 * self.d_model,
                vocab_size=self.vocab_size,
                max_seq_len=max(self.seq_len, 64),
                mlp="gelu",
                norm="layernorm",
                position="learned",
                tied_embeddings=True,
                qkv_bias=True,
                out_bias=True,
                mlp_bias=True,
                source="mlcost calibrate grid",
            )
        if self.family == "llama":
            d_ff = round(8 * self.d_model / 3 / 64) * 64
            return ModelSpec(
                name=name,
                n_layers=self.n_layers,
                d_model=self.d_model,
                n_heads=heads,
                d_ff=d_ff,
                vocab_size=self.vocab_size,
                max_seq_len=max(self.seq_len, 64),
                source="mlcost calibrate grid",
            )
        raise ValueError(f"family must be gpt2 or llama, got {self.family!r}")

    def job(self) -> TrainJob:
        """The estimator's job for one fp32 AdamW step of this shape. Flash attention is on: with a causal
        mask and no padding, transformers' SDPA path runs torch's fused CPU kernel
        (``aten::_scaled_dot_product_flash_attention_for_cpu`` in the profiler), which never stores the
        s×s score matrix. Element-wise ops are not fused (eager PyTorch)."""
        from mlcost.measure.facts import runner_job
        from mlcost.measure.options import TrainShape

        shape = TrainShape(micro_batch=self.micro_batch, seq_len=self.seq_len, precision="fp32")
        return runner_job(shape, world_size=1, precision="fp32", steps=1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "n_layers": self.n_layers,
            "d_model": self.d_model,
            "seq_len": self.seq_len,
            "micro_batch": self.micro_batch,
            "vocab_size": self.vocab_size,
        }


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """A measured training configuration.

    Attributes:
        label: human label (``gpt2 L4 d256 s128 b4`` or a ledger run id).
        spec / job: what ran, in the estimator's terms.
        step_time_s: median optimizer-step time. Units: s.
        step_time_min_s: fastest measured step (robust to noisy neighbours on a shared machine). Units: s.
        peak_delta_bytes: peak RSS − RSS before building the model, or None (ledger runs). Units: bytes.
        source: ``calibrate`` (measured here) or ``ledger:<run id>``.
        probe_flops_per_s: best rate of a fixed reference GEMM timed in the same process right before
            and after the steps (:func:`probe_matmul_flops_per_s`): how fast the machine was while this
            configuration ran, for telling machine drift from model error. Units: FLOP/s.
        per_round: each round's raw figures (``measure_configs`` with ``rounds`` > 1).
    """

    label: str
    spec: ModelSpec
    job: TrainJob
    step_time_s: float
    peak_delta_bytes: float | None
    source: str = "calibrate"
    baseline_rss_bytes: float | None = None
    step_time_min_s: float | None = None
    probe_flops_per_s: float | None = None
    per_round: tuple[dict[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "source": self.source,
            "model": self.spec.to_dict(),
            "job": self.job.to_dict(),
            "step_time_s": self.step_time_s,
            "peak_delta_bytes": self.peak_delta_bytes,
            "baseline_rss_bytes": self.baseline_rss_bytes,
            "step_time_min_s": self.step_time_min_s,
            "probe_flops_per_s": self.probe_flops_per_s,
            "per_round": list(self.per_round),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        """The inverse of :meth:`to_dict` (a measurement saved in ``calibration.json`` or by a benchmark)."""
        return cls(
            label=str(data["label"]),
            source=str(data.get("source", "calibrate")),
            spec=ModelSpec.from_dict(data["model"]),
            job=TrainJob.from_dict(data["job"]),
            step_time_s=float(data["step_time_s"]),
            peak_delta_bytes=data.get("peak_delta_bytes"),
            baseline_rss_bytes=data.get("baseline_rss_bytes"),
            step_time_min_s=data.get("step_time_min_s"),
            probe_flops_per_s=data.get("probe_flops_per_s"),
            per_round=tuple(data.get("per_round", ())),
        )


#: The reference GEMM of :func:`probe_matmul_flops_per_s` (fp32, n × n @ n × n). Units: elements.
PROBE_DIM = 512


def probe_matmul_flops_per_s(repeats: int = 20) -> float:
    """Best rate of an fp32 ``PROBE_DIM``² GEMM over ``repeats`` timed calls (the microbenchmark's own
    :func:`~mlcost.calibrate.microbench.bench_matmul`, ≈ 0.15 s here): a cheap reading of how fast this
    (possibly shared) machine runs right now. Units: FLOP/s."""
    from mlcost.calibrate.microbench import bench_matmul

    return bench_matmul((PROBE_DIM,), repeats=repeats)[PROBE_DIM]


def probe_memory_rates(repeats: int = 5) -> dict[str, float]:
    """Best large-copy rate (128 MiB, bytes read + written) and first-touch rate (a fresh 64 MiB tensor) over
    ``repeats`` calls (≈ 0.3 s): like :func:`probe_matmul_flops_per_s`, a reading of this machine's memory
    system taken next to each run's steps. Units: bytes/s."""
    import torch

    from mlcost.calibrate.microbench import bench_first_touch, time_best_s

    src = torch.ones(2**25)  # the microbenchmark's copy size (bench_memory): 128 MiB, beyond the caches
    dst = torch.empty_like(src)
    copy = (
        2.0
        * 4.0
        * src.numel()
        / time_best_s(lambda: dst.copy_(src), warmup=1, repeats=repeats, sync=lambda: None)
    )
    return {
        "probe_copy_bytes_per_s": copy,
        "probe_first_touch_bytes_per_s": bench_first_touch(repeats=repeats),
    }


def _measure_in_process(cfg: dict[str, Any], steps: int, warmup: int, threads: int) -> dict[str, float]:
    """Child process body: one measured run through the runner's lifecycle and step loop
    (:func:`mlcost.measure.train.run_training`, no ledger, no FLOP-count pass so that the peak memory is
    the training job's own), then plain floats back to the parent. The run is given the package catalog
    and no calibration (:meth:`RunFacts.builtin`): a calibration never depends on an earlier one."""
    import torch

    from mlcost.measure.meters import ClockTimer, EstimatedEnergyMeter, MeterSet
    from mlcost.measure.meters.memory import RssMemoryMeter
    from mlcost.measure.options import RunFacts, TrainOptions, TrainShape
    from mlcost.measure.train import run_training

    if threads > 0:
        torch.set_num_threads(threads)
    rc = RunConfig(**cfg)
    job = rc.job()
    opts = TrainOptions(
        shape=TrainShape(micro_batch=rc.micro_batch, seq_len=rc.seq_len, precision=job.precision),
        steps=steps,
        warmup=warmup,
        model_name=rc.label,
        check_memory=False,
        count_flops=False,
        facts=RunFacts.builtin(),
    )
    probe_before = probe_matmul_flops_per_s()
    memory = RssMemoryMeter(interval_s=0.002)
    meters = MeterSet(timer=ClockTimer(), energy=EstimatedEnergyMeter.for_cpu(), memory=memory)
    with meters:  # the RSS sampler stops before the probe: its buffers are not the job's memory
        record = run_training(rc.spec(), opts, meters=meters)
        baseline = float(memory.baseline_bytes)
    if record.status != "completed":
        raise RuntimeError(f"calibration run {rc.label} {record.status}: {record.error}")
    m = record.metrics
    probe = max(probe_before, probe_matmul_flops_per_s())
    return {
        "step_time_s": float(m["step_time_s"]),
        "step_time_min_s": float(m["step_time_min_s"]),
        "peak_delta_bytes": float(m["peak_memory_bytes"]) - baseline,
        "baseline_rss_bytes": baseline,
        "probe_flops_per_s": probe,
        **probe_memory_rates(),
    }


def measure_configs(
    configs: list[RunConfig],
    *,
    steps: int = 6,
    warmup: int = 2,
    threads: int = 0,
    progress: Any = None,
    rounds: int = 1,
) -> list[Measurement]:
    """Measure each configuration in its own spawned process (see the module docstring), ``rounds`` times
    in turn: ``step_time_s`` is the median over rounds of each round's median step, ``step_time_min_s`` the
    fastest step of all rounds, memory the median over rounds."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from mlcost.errors import require

    require("torch", "mlcost calibrate", extra="measure")
    out: list[Measurement] = []
    # A fork server imports torch and transformers once (≈ 30 s on 2 cores) and forks a fresh process per
    # configuration; it never runs a torch op itself, so forking it is safe with OpenMP.
    methods = mp.get_all_start_methods()
    ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
    if ctx.get_start_method() == "forkserver":
        ctx.set_forkserver_preload(["mlcost.calibrate._preload"])
    # Rounds run the whole grid again in turn (interleaved), so a slow spell of a noisy neighbour touches
    # one round of every configuration rather than every step of one; the fastest step over all rounds
    # is the least disturbed figure (neighbours only ever slow a step down).
    results: list[list[dict[str, float]]] = [[] for _ in configs]
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx, max_tasks_per_child=1) as pool:
        for rnd in range(max(rounds, 1)):
            futures = [pool.submit(_measure_in_process, c.to_dict(), steps, warmup, threads) for c in configs]
            for i, (c, fut) in enumerate(zip(configs, futures, strict=True)):
                results[i].append(fut.result())
                if progress is not None:
                    progress(c.label if rounds <= 1 else f"{c.label} (round {rnd + 1}/{rounds})")
    for c, rs in zip(configs, results, strict=True):
        out.append(
            Measurement(
                label=c.label,
                spec=c.spec(),
                job=c.job(),
                step_time_s=statistics.median(r["step_time_s"] for r in rs),
                peak_delta_bytes=statistics.median(r["peak_delta_bytes"] for r in rs),
                baseline_rss_bytes=statistics.median(r["baseline_rss_bytes"] for r in rs),
                step_time_min_s=min(r["step_time_min_s"] for r in rs),
                probe_flops_per_s=statistics.median(r["probe_flops_per_s"] for r in rs),
                per_round=tuple(rs),
            )
        )
    return out


def with_fastest_steps(measurements: list[Measurement]) -> list[Measurement]:
    """The measurements with ``step_time_s`` set to the fastest step where one was recorded: the
    statistic ``mlcost calibrate`` fits and ``benchmarks/calibration_accuracy.py`` validates (on a shared
    machine neighbours only ever slow a step down)."""
    return [dataclasses.replace(m, step_time_s=m.step_time_min_s or m.step_time_s) for m in measurements]


def merge_probe_rates(matmul_fp32: dict[int, float], measurements: list[Measurement]) -> dict[int, float]:
    """The fp32 GEMM size curve with the runs' reference probes folded in: each probe is a
    ``PROBE_DIM``² fp32 GEMM timed on this machine in this session, so the best one is as much a
    measurement of that size's rate as the microbenchmark's own (and, on a shared machine, often taken
    in a quieter moment). Returns a new ``{n: FLOP/s}``."""
    out = dict(matmul_fp32)
    rates = [r.get("probe_flops_per_s") or 0.0 for m in measurements for r in m.per_round]
    rates += [m.probe_flops_per_s or 0.0 for m in measurements]
    best = max(rates, default=0.0)
    if best > out.get(PROBE_DIM, 0.0):
        out[PROBE_DIM] = best
    return out


def merge_memory_probes(mb: Any, measurements: list[Measurement]) -> None:
    """Raise ``mb``'s copy rate to the best the runs' probes measured
    (:func:`probe_memory_rates`): capabilities, like the GEMM peak, that a shared machine only ever
    lowers — and the fitted steps are the fastest ones, taken in the same quiet moments."""
    rounds = [r for m in measurements for r in m.per_round]
    copy = max((r.get("probe_copy_bytes_per_s") or 0.0 for r in rounds), default=0.0)
    mb.copy_bytes_per_s = max(mb.copy_bytes_per_s, copy)
    # The first-touch probe is recorded but not merged: right after a run, a process refaults a 64 MiB
    # tensor up to 7x faster than the microbenchmark's fresh process (28.9 vs 4.1 GB/s, 2026-12-01), while
    # the training steps pay about the microbenchmark's rate (docs/calibrate.md).


#: Configurations `mlcost calibrate` trains by default (the benchmark uses its own, different grid).
DEFAULT_FIT_CONFIGS: tuple[RunConfig, ...] = (
    RunConfig(family="gpt2", n_layers=2, d_model=128, seq_len=128, micro_batch=4),
    RunConfig(family="gpt2", n_layers=4, d_model=256, seq_len=256, micro_batch=2),
    RunConfig(family="llama", n_layers=2, d_model=256, seq_len=128, micro_batch=4),
    RunConfig(family="llama", n_layers=4, d_model=384, seq_len=64, micro_batch=8),
    RunConfig(family="gpt2", n_layers=3, d_model=512, seq_len=128, micro_batch=2),
    # A larger vocabulary: the LM head GEMM, the loss and its logits-sized buffers weigh more.
    RunConfig(family="gpt2", n_layers=2, d_model=256, seq_len=128, micro_batch=4, vocab_size=16384),
    RunConfig(family="llama", n_layers=3, d_model=128, seq_len=512, micro_batch=1),
    RunConfig(family="gpt2", n_layers=6, d_model=256, seq_len=64, micro_batch=4),
    RunConfig(family="llama", n_layers=5, d_model=256, seq_len=256, micro_batch=1),
    RunConfig(family="gpt2", n_layers=2, d_model=384, seq_len=512, micro_batch=1),
    RunConfig(family="llama", n_layers=2, d_model=512, seq_len=64, micro_batch=4),
    RunConfig(family="llama", n_layers=3, d_model=384, seq_len=256, micro_batch=2, vocab_size=16384),
)
#: How many of DEFAULT_FIT_CONFIGS ``mlcost calibrate --quick`` runs: more than the 6 time parameters.
QUICK_FIT_CONFIGS = 8
