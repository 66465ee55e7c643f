"""Serving under an open-loop request load on a real continuous-batching engine.

Engine ``hf``: transformers' own continuous batching (``model.init_continuous_batching()``, a background
thread that schedules decodes first, then prefills — chunked when a prompt exceeds the token budget — within
``max_batch_tokens`` and ``max_seqs`` per iteration, over a paged KV cache). transformers is the engine the
project already depends on and runs on a CPU; the driver never reimplements its scheduler.

The load generator submits each request at its arrival time (open loop: arrivals never wait for the
engine) and records, per request, the arrival, the submission and the time of every generated token
(transformers' ``record_timestamps``, ``time.perf_counter`` in the engine thread, right after the
iteration that produced the token). The engine's iterations are logged too (start, end, sequences,
prefill tokens, decode sequences, context tokens), by wrapping the manager's loop body and step on the
instance — the vendor boundary, read only.

Metrics (:func:`summarize`): TTFT = first token − arrival; inter-token latency (ITL) = gaps between
consecutive tokens of a request; throughput = output tokens / (last token − first arrival).
torch and transformers are imported inside the functions (the ``measure`` and ``hf`` extras).
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from mlcost.errors import SpecError, require

__all__ = [
    "EngineSettings",
    "HfEngine",
    "IterationTiming",
    "LoadRequest",
    "LoadResult",
    "RequestTiming",
    "littles_law",
    "poisson_requests",
    "quantile",
    "summarize",
]


@dataclass(frozen=True, kw_only=True)
class LoadRequest:
    """One request of a workload.

    Attributes:
        arrival_s: arrival time after the start of the load. Units: s.
        prompt_len: prompt tokens.
        output_len: tokens to generate (no end-of-sequence token stops it earlier).
    """

    arrival_s: float
    prompt_len: int
    output_len: int


def poisson_requests(
    rate_per_s: float, n: int, *, prompt_len: int, output_len: int, seed: int = 0
) -> list[LoadRequest]:
    """``n`` requests with Poisson arrivals at ``rate_per_s`` (exponential gaps, seeded; the first request
    arrives after one gap) and fixed lengths."""
    import numpy as np

    if not rate_per_s > 0:
        raise SpecError(f"--rps {rate_per_s} must be positive", hint="give requests per second, e.g. --rps 2")
    if n < 1 or prompt_len < 1 or output_len < 1:
        raise SpecError("requests, prompt and output lengths must be at least 1", hint="e.g. --requests 20")
    gaps = np.random.default_rng(seed).exponential(1.0 / rate_per_s, n)
    return [
        LoadRequest(arrival_s=float(t), prompt_len=prompt_len, output_len=output_len) for t in np.cumsum(gaps)
    ]


@dataclass(frozen=True, kw_only=True)
class EngineSettings:
    """Continuous-batching settings of the engine (and of the simulator that mirrors it).

    Attributes:
        max_batch_tokens: tokens (prefill + decode) per iteration.
        max_seqs: sequences per iteration.
        page_size: tokens per KV-cache page.
        num_blocks: KV-cache pages (× page_size tokens of capacity).
    """

    max_batch_tokens: int = 256
    max_seqs: int = 16
    page_size: int = 32
    num_blocks: int = 512

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(kw_only=True)
class RequestTiming:
    """What happened to one request (times after the start of the load). Units: s.

    Attributes:
        arrival_s: scheduled arrival.
        submit_s: when the driver handed it to the engine (≥ arrival; the gap is the driver's lag).
        token_times_s: when each output token was produced.
        prompt_len / output_len: tokens.
        first_iteration_s: start of the first engine iteration that processed it (None if not logged).
    """

    arrival_s: float
    submit_s: float
    token_times_s: list[float]
    prompt_len: int
    output_len: int
    first_iteration_s: float | None = None

    @property
    def ttft_s(self) -> float:
        return self.token_times_s[0] - self.arrival_s

    @property
    def finish_s(self) -> float:
        return self.token_times_s[-1]

    @property
    def itls_s(self) -> list[float]:
        t = self.token_times_s
        return [b - a for a, b in itertools.pairwise(t)]


@dataclass(kw_only=True)
class IterationTiming:
    """One engine iteration (one forward pass over the batch). Times in s after the start of the load.

    Attributes:
        start_s / end_s: loop body start (scheduling) and end (tokens handed out). Units: s.
        seqs: sequences in the batch; decode_seqs of them decoding one token.
        prefill_tokens: prompt tokens processed (prefill chunks).
        context_tokens: sum over the batch of the tokens already in each sequence's KV cache.
        prefill_ctx_tokens / decode_ctx_tokens: the same sum over the prefill chunks / decode sequences.
        prefill_pairs: causal attention pairs of the prefill chunks, Σ n·s + n(n+1)/2 (n new tokens after s
            cached), what :func:`mlcost.estimate.serve_step.step_parts` takes.
    """

    start_s: float
    end_s: float
    seqs: int
    decode_seqs: int
    prefill_tokens: int
    context_tokens: int
    prefill_ctx_tokens: int = 0
    decode_ctx_tokens: int = 0
    prefill_pairs: float = 0.0

    @property
    def prefill_seqs(self) -> int:
        return self.seqs - self.decode_seqs

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(kw_only=True)
class LoadResult:
    """A measured load: per-request timings, the engine's iteration log and what produced them."""

    requests: list[RequestTiming]
    iterations: list[IterationTiming]
    settings: EngineSettings
    rate_per_s: float | None = None
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return summarize(self.requests)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate_per_s": self.rate_per_s,
            "seconds": self.seconds,
            "settings": self.settings.to_dict(),
            "info": self.info,
            "requests": [asdict(r) for r in self.requests],
            "iterations": [asdict(i) for i in self.iterations],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadResult:
        return cls(
            requests=[RequestTiming(**r) for r in data["requests"]],
            iterations=[IterationTiming(**i) for i in data["iterations"]],
            settings=EngineSettings(**data["settings"]),
            rate_per_s=data.get("rate_per_s"),
            seconds=float(data.get("seconds", 0.0)),
            info=dict(data.get("info") or {}),
        )


def quantile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated quantile (numpy's default), None for no values."""
    v = sorted(values)
    if not v:
        return None
    pos = (len(v) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def summarize(requests: Sequence[RequestTiming]) -> dict[str, Any]:
    """TTFT p50/p90/p99, ITL p50/p90, per-request TPOT p50, latency p50, output-token and request
    throughput of completed requests. Units: s, tokens/s, requests/s."""
    done = [r for r in requests if r.token_times_s]
    if not done:
        return {"requests": 0}
    ttft = [r.ttft_s for r in done]
    itl = [g for r in done for g in r.itls_s]
    tpot = [(r.finish_s - r.token_times_s[0]) / (len(r.token_times_s) - 1) for r in done if len(r.itls_s)]
    span = max(r.finish_s for r in done) - min(r.arrival_s for r in done)
    tokens = sum(len(r.token_times_s) for r in done)
    return {
        "requests": len(done),
        "ttft_p50_s": quantile(ttft, 0.5),
        "ttft_p90_s": quantile(ttft, 0.9),
        "ttft_p99_s": quantile(ttft, 0.99),
        "itl_p50_s": quantile(itl, 0.5),
        "itl_p90_s": quantile(itl, 0.9),
        "tpot_p50_s": quantile(tpot, 0.5),
        "latency_p50_s": quantile([r.finish_s - r.arrival_s for r in done], 0.5),
        "throughput_tokens_per_s": tokens / span if span > 0 else None,
        "throughput_requests_per_s": len(done) / span if span > 0 else None,
        "output_tokens": tokens,
        "span_s": span,
    }


def littles_law(result: LoadResult) -> dict[str, float]:
    """Little's law L = λ·W from two independent records of the same run: L = time-averaged sequences in
    the engine's batches (iteration log), λ·W = completed requests / span × mean time in the engine (first
    iteration → last token, request timestamps). They agree when both records are right."""
    its = [i for i in result.iterations if i.seqs > 0]
    reqs = [r for r in result.requests if r.token_times_s and r.first_iteration_s is not None]
    if not its or not reqs:
        return {}
    t0 = min(i.start_s for i in its)
    t1 = max(i.end_s for i in its)
    occupancy = sum(i.seqs * i.duration_s for i in its) / (t1 - t0)
    w = sum(r.finish_s - float(r.first_iteration_s or 0.0) for r in reqs) / len(reqs)
    lam = len(reqs) / (t1 - t0)
    return {"mean_batch_seqs": occupancy, "arrival_rate_x_time_in_engine": lam * w}


class HfEngine:
    """transformers' continuous batching around one model, started once and reused for several loads.

    Use as a context manager; :meth:`run` plays one workload and returns its :class:`LoadResult`."""

    def __init__(self, module: Any, settings: EngineSettings | None = None, *, seed: int = 0) -> None:
        self.torch = require("torch", "mlcost measure serve --engine hf", extra="measure")
        self.transformers = require("transformers", "mlcost measure serve --engine hf", extra="hf")
        self.module = module.eval()
        self.settings = settings or EngineSettings()
        self.seed = seed
        self.vocab_size = int(getattr(module.config, "vocab_size", 256))
        self._manager: Any = None
        self._iterations: list[tuple[float, float, list[tuple[str, int, int]]]] = []
        self._batch: list[tuple[str, int, int]] = []
        self._lock = threading.Lock()
        self._counter = 0

    # -- engine lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> HfEngine:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        tf = self.transformers
        s = self.settings
        gen = tf.GenerationConfig(do_sample=False, max_new_tokens=16, eos_token_id=-1, pad_token_id=0)
        cb = tf.ContinuousBatchingConfig(
            page_size=s.page_size,
            num_blocks=s.num_blocks,
            max_batch_tokens=s.max_batch_tokens,
            max_requests_per_batch=s.max_seqs,
            allow_block_sharing=False,  # random prompts share no prefix; keep the scheduler plain
            seed=self.seed,
        )
        mgr = self.module.init_continuous_batching(generation_config=gen, continuous_batching_config=cb)
        self._instrument(mgr)
        self._manager = mgr
        mgr.start()

    def stop(self) -> None:
        if self._manager is not None:
            self._manager.stop(block=True, timeout=60)
            self._manager = None

    def _instrument(self, mgr: Any) -> None:
        """Log each iteration: wrap the loop body (timing) and the step (batch composition)."""
        body, step = mgr._generation_loop_body, mgr._generation_step

        def logged_step() -> None:
            io = mgr.batch_processor.inputs_and_outputs
            self._batch = [
                (str(f.state.request_id), int(f.query_length), int(f.state.position_offset))
                for f in io.requests_in_batch
            ]
            step()

        def logged_body(processor: Any, bootstrapping: bool) -> bool:
            self._batch = []
            t0 = time.perf_counter()
            more = bool(body(processor, bootstrapping))
            if self._batch:
                with self._lock:
                    self._iterations.append((t0, time.perf_counter(), self._batch))
            return more

        mgr._generation_step = logged_step
        mgr._generation_loop_body = logged_body

    # -- one load --------------------------------------------------------------------------------------
    def run(
        self, requests: Sequence[LoadRequest], *, rate_per_s: float | None = None, timeout_s: float = 600.0
    ) -> LoadResult:
        """Submit ``requests`` at their arrival times, wait for all of them and return the timings."""
        import random

        if self._manager is None:
            raise RuntimeError("HfEngine.run() outside start()/stop()")
        mgr = self._manager
        rng = random.Random(self.seed + self._counter)
        prompts = [[rng.randrange(self.vocab_size) for _ in range(r.prompt_len)] for r in requests]
        ids = [f"load{self._counter}-{i}" for i in range(len(requests))]
        self._counter += 1
        with self._lock:
            self._iterations = []
        order = sorted(range(len(requests)), key=lambda i: requests[i].arrival_s)
        submit: dict[str, float] = {}
        t_start = time.perf_counter()
        for i in order:
            delay = t_start + requests[i].arrival_s - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            submit[ids[i]] = time.perf_counter() - t_start
            mgr.add_request(
                prompts[i],
                request_id=ids[i],
                max_new_tokens=requests[i].output_len,
                record_timestamps=True,
                eos_token_id=-1,
            )
        outputs: dict[str, Any] = {}
        deadline = time.perf_counter() + timeout_s
        while len(outputs) < len(requests) and time.perf_counter() < deadline:
            out = mgr.get_result(timeout=1.0)
            if out is not None and out.request_id in submit:
                if out.error:
                    raise RuntimeError(f"request {out.request_id} failed in the engine: {out.error}")
                outputs[out.request_id] = out
        seconds = time.perf_counter() - t_start
        if len(outputs) < len(requests):
            raise RuntimeError(f"{len(requests) - len(outputs)} requests unfinished after {timeout_s:.0f} s")
        with self._lock:
            raw = list(self._iterations)
        iterations, first_seen = _iterations(raw, t_start)
        timings = [
            RequestTiming(
                arrival_s=requests[i].arrival_s,
                submit_s=submit[ids[i]],
                token_times_s=[t - t_start for t in (outputs[ids[i]].timestamps or [])],
                prompt_len=requests[i].prompt_len,
                output_len=requests[i].output_len,
                first_iteration_s=first_seen.get(ids[i]),
            )
            for i in range(len(requests))
        ]
        info = {
            "engine": "hf",
            "transformers": self.transformers.__version__,
            "torch": self.torch.__version__,
        }
        info["torch_threads"] = int(self.torch.get_num_threads())
        return LoadResult(
            requests=timings,
            iterations=iterations,
            settings=self.settings,
            rate_per_s=rate_per_s,
            seconds=seconds,
            info=info,
        )


def _iterations(
    raw: list[tuple[float, float, list[tuple[str, int, int]]]], t_start: float
) -> tuple[list[IterationTiming], dict[str, float]]:
    out: list[IterationTiming] = []
    first_seen: dict[str, float] = {}
    for t0, t1, batch in raw:
        start = t0 - t_start
        for rid, _q, _ctx in batch:
            first_seen.setdefault(rid, start)
        # a sequence with one query token decodes (a 1-token prompt remainder counts as decode: same cost)
        pre = [(q, c) for _r, q, c in batch if q > 1]
        dec = [c for _r, q, c in batch if q == 1]
        out.append(
            IterationTiming(
                start_s=start,
                end_s=t1 - t_start,
                seqs=len(batch),
                decode_seqs=len(dec),
                prefill_tokens=sum(q for q, _c in pre),
                context_tokens=sum(c for _r, _q, c in batch),
                prefill_ctx_tokens=sum(c for _q, c in pre),
                decode_ctx_tokens=sum(dec),
                prefill_pairs=float(sum(q * c + q * (q + 1) / 2.0 for q, c in pre)),
            )
        )
    return out, first_seen


def load_metrics(result: LoadResult) -> dict[str, Any]:
    """The ledger metrics of a load run, under the serving contract's keys: ``ttft_s`` (p50), ``ttft_p90_s``,
    ``ttft_p99_s``, ``itl_p50_s``, ``itl_p90_s``, ``time_per_output_token_s`` (per-request TPOT, p50),
    ``request_time_s`` (latency p50), ``tokens_per_s`` (output throughput), ``requests_per_s``, ``rps``
    (offered), ``requests_measured`` and Little's-law figures. Units: s, tokens/s, requests/s."""
    s = result.summary()
    out: dict[str, Any] = {
        "rps": result.rate_per_s,
        "requests_measured": s.get("requests"),
        "ttft_s": s.get("ttft_p50_s"),
        "ttft_p90_s": s.get("ttft_p90_s"),
        "ttft_p99_s": s.get("ttft_p99_s"),
        "itl_p50_s": s.get("itl_p50_s"),
        "itl_p90_s": s.get("itl_p90_s"),
        "time_per_output_token_s": s.get("tpot_p50_s"),
        "request_time_s": s.get("latency_p50_s"),
        "tokens_per_s": s.get("throughput_tokens_per_s"),
        "requests_per_s": s.get("throughput_requests_per_s"),
        "iterations": len(result.iterations),
        "max_batch_seqs": max((i.seqs for i in result.iterations), default=0),
    }
    out.update(littles_law(result))
    return out


def simulate_load(
    model: Any,
    requests: Sequence[LoadRequest],
    settings: EngineSettings,
    *,
    device: Any,
    profile: Any,
    engine: Any,
    precision: str = "fp32",
    rate_per_s: float | None = None,
) -> tuple[dict[str, Any], Any]:
    """The serving simulator (:func:`mlcost.estimate.serve_sim.simulate`) on the same requests (arrival
    times and lengths) and engine limits (chunked prefill within ``max_batch_tokens``, ``max_seqs``
    sequences, ``num_blocks`` KV pages of ``page_size`` tokens) with iteration costs of ``model`` on
    ``device`` / ``profile`` / ``engine`` (:func:`mlcost.estimate.serve_step.replica_coefficients`).

    Returns the metrics under the keys :func:`load_metrics` gives the measured run, and the SimResult."""
    import numpy as np

    from mlcost.estimate.serve_sim import EngineConfig, simulate
    from mlcost.estimate.serve_step import replica_coefficients
    from mlcost.estimate.serve_workload import Workload

    c = replica_coefficients(
        model, device, profile, engine, tp=1, weight_precision=precision, kv_precision=precision
    )
    reqs = sorted(requests, key=lambda r: r.arrival_s)
    workload = Workload(
        prompt_tokens=np.array([r.prompt_len for r in reqs]),
        output_tokens=np.array([r.output_len for r in reqs]),
        arrival_s=np.array([r.arrival_s for r in reqs], dtype=np.float64),
        rate_rps=rate_per_s,
        description={"source": "the measured load's requests"},
    )
    config = EngineConfig(
        max_num_batched_tokens=settings.max_batch_tokens,
        max_num_seqs=settings.max_seqs,
        chunked_prefill=True,
        kv_block_size=settings.page_size,
    )
    sim = simulate(c, workload, config, n_blocks=settings.num_blocks, max_context=model.max_seq_len)
    pr = sim.per_request
    ttft = [float(x) for x in pr["first_token_s"] - pr["arrival_s"]]
    out = {
        "rps": rate_per_s,
        "requests_measured": sim.requests,
        "ttft_s": quantile(ttft, 0.5),
        "ttft_p90_s": quantile(ttft, 0.9),
        "ttft_p99_s": quantile(ttft, 0.99),
        "itl_p50_s": sim.itl_s["p50"],
        "itl_p90_s": sim.itl_s["p90"],
        "time_per_output_token_s": sim.tpot_s["p50"],
        "request_time_s": quantile([float(x) for x in pr["finish_s"] - pr["arrival_s"]], 0.5),
        "tokens_per_s": sim.output_tokens_per_s,
        "requests_per_s": sim.throughput_rps,
        "iterations": sim.iterations,
        "mean_batch_seqs": sim.mean_running,
        "batching": "continuous",
        "simulator": "mlcost.estimate.serve_sim",
    }
    return out, sim
