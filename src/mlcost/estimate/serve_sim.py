"""A discrete-event simulator of continuous (in-flight) batching on one serving replica, in the spirit of
Vidur (Agrawal et al., MLSys 2024: a scheduler replayed over per-iteration costs); the iteration cost is
:mod:`mlcost.estimate.serve_step`, the same one the static model uses.

The engine loop (vLLM-like; docs/serve.md):

* each **iteration** is one forward pass; requests join and leave the running batch only between
  iterations; arrivals during an iteration wait for the next one;
* **chunked prefill on** (vLLM V1): every running decode sequence takes ``q`` tokens of the
  ``max_num_batched_tokens`` budget (q = 1, or draft length + 1 with speculative decoding), then
  unfinished prefills continue, then waiting requests are admitted first come first served, their prompts
  cut into chunks that fit the remaining budget;
* **chunked prefill off** (vLLM V0's default scheduler): if a waiting request can be admitted, the
  iteration prefills whole prompts only (running decodes stall); otherwise it decodes every running
  sequence;
* at most ``max_num_seqs`` sequences run; **paged KV cache**: a sequence holds ceil(tokens / block)
  blocks of ``kv_block_size`` tokens; the pool holds (memory × ``gpu_memory_fraction`` − weights −
  framework overhead) / block bytes blocks. A request is admitted only if its chunk's blocks are free; when
  a decode step needs a block and none is free, the most recently admitted sequence is **preempted**
  (recompute: its blocks are freed and it re-prefills prompt + generated tokens later, ahead of the queue);
* **prefix cache**: ``prefix_share`` of each prompt is a cache hit (attended to, not recomputed). Its
  **full** blocks are **shared**: the cached part of every prompt is taken to be a prefix of one common
  document (a system prompt, a few-shot block), so the pool holds those blocks once, reference-counted, while
  any running sequence uses them, as vLLM's automatic prefix caching, SGLang's radix cache and TensorRT-LLM's
  KV reuse do. A running sequence ``i`` with ``h_i`` cached tokens holds ``s_i = floor(h_i / block)`` shared
  blocks and ``blocks_i − s_i`` blocks of its own (the partial last cached block, the rest of the prompt, its
  output); the pool uses ``max_i s_i + Σ_i (blocks_i − s_i)`` blocks. Admission needs its own blocks plus
  the shared ones no running sequence holds yet; a preempted sequence frees only its own blocks (the shared
  ones stay while another running sequence uses them); shared blocks no running sequence references are free
  (evictable) and assumed to stay cached, so every prompt gets its hit. ``share_prefix_blocks=False``
  counts every block per sequence instead (distinct prefixes: the upper bound on memory);
* **speculative decoding**: each decode step scores ``k + 1`` tokens per sequence and emits on average
  (1 − α^(k+1)) / (1 − α) of them (acceptance α, Leviathan et al. 2023), plus ``k`` draft passes each
  costing ``spec_draft_cost_frac`` of a target decode step's fixed + weight-read time.

**Speed**: decode-only stretches whose batch does not change are not stepped one by one: the contexts
grow by one token per step, so each step's compute and memory time are affine in the step index and the
stretch's duration is summed in closed form (split where the roofline switches sides); the stretch ends at
the next finish, the next arrival that could be admitted, or the step where the KV pool runs out.
Events (finishes, closed-loop arrivals) sit in ``heapq`` heaps.

Outputs (:class:`SimResult`): throughput, TTFT / inter-token latency / end-to-end latency / queueing
delay percentiles, KV occupancy, preemptions and $ per million output tokens. Deterministic for a given
workload (draw the workload with a seed).
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlcost.errors import SpecError
from mlcost.estimate.serve_step import KV_BLOCK_TOKENS, StepCoefficients, step_parts
from mlcost.estimate.serve_workload import Workload

__all__ = [
    "PERCENTILES",
    "EngineConfig",
    "SimResult",
    "kv_blocks",
    "simulate",
    "speculative_tokens_per_step",
]

#: Percentiles every distribution reports.
PERCENTILES: tuple[int, ...] = (50, 90, 99)


@dataclass(frozen=True, kw_only=True)
class EngineConfig:
    """Scheduler and memory settings of one replica (named after vLLM's engine arguments).

    Attributes:
        max_num_batched_tokens: token budget of one iteration (None: 8192 with chunked prefill; with it off,
            the longest prompt or 8192, whichever is larger, so every prompt fits; an assumption — set your engine's value).
        max_num_seqs: most sequences running at once.
        chunked_prefill: split prompts across iterations and mix them with decodes (module docstring).
        kv_block_size: tokens per KV-cache block. Units: tokens.
        gpu_memory_fraction: share of device memory the engine may use (weights + KV + overhead).
        spec_draft_tokens: speculative decoding draft length k (0: off).
        spec_acceptance: probability α that a draft token is accepted, in [0, 1).
        spec_draft_cost_frac: cost of one draft pass relative to the target model's fixed + weight-read
            time of a decode step (0.05: a small draft model or an EAGLE-style head).
    """

    max_num_batched_tokens: int | None = None
    max_num_seqs: int = 256
    chunked_prefill: bool = True
    kv_block_size: int = KV_BLOCK_TOKENS
    gpu_memory_fraction: float = 0.9
    spec_draft_tokens: int = 0
    spec_acceptance: float = 0.0
    spec_draft_cost_frac: float = 0.05

    def __post_init__(self) -> None:
        if self.max_num_batched_tokens is not None and self.max_num_batched_tokens < 1:
            raise SpecError(f"--max-num-batched-tokens must be >= 1, got {self.max_num_batched_tokens}")
        if self.max_num_seqs < 1:
            raise SpecError(f"--max-num-seqs must be >= 1, got {self.max_num_seqs}")
        if self.kv_block_size < 1:
            raise SpecError(f"--kv-block-size must be >= 1, got {self.kv_block_size}")
        if not (0.0 < self.gpu_memory_fraction <= 1.0):
            raise SpecError(f"--gpu-memory-fraction must be in (0, 1], got {self.gpu_memory_fraction}")
        if self.spec_draft_tokens < 0:
            raise SpecError(f"--spec-draft-tokens must be >= 0, got {self.spec_draft_tokens}")
        if not (0.0 <= self.spec_acceptance < 1.0) or not math.isfinite(self.spec_acceptance):
            raise SpecError(f"--spec-acceptance must be in [0, 1), got {self.spec_acceptance}")
        if not (0.0 <= self.spec_draft_cost_frac <= 10.0):
            raise SpecError(f"spec_draft_cost_frac must be in [0, 10], got {self.spec_draft_cost_frac}")

    def budget(self, longest_prompt: int) -> int:
        """The iteration token budget (attribute doc)."""
        if self.max_num_batched_tokens is not None:
            return self.max_num_batched_tokens
        return 8192 if self.chunked_prefill else max(8192, longest_prompt)

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "max_num_seqs": self.max_num_seqs,
            "chunked_prefill": self.chunked_prefill,
            "kv_block_size": self.kv_block_size,
            "gpu_memory_fraction": self.gpu_memory_fraction,
            "spec_draft_tokens": self.spec_draft_tokens,
            "spec_acceptance": self.spec_acceptance,
            "spec_draft_cost_frac": self.spec_draft_cost_frac,
        }


def speculative_tokens_per_step(draft_tokens: int, acceptance: float) -> float:
    """Expected tokens one decode step emits per sequence with ``draft_tokens`` drafts accepted each with
    probability ``acceptance``: (1 − α^(k+1)) / (1 − α) (Leviathan et al. 2023, eq. 1); 1 without drafts."""
    if draft_tokens <= 0:
        return 1.0
    a = acceptance
    return float(draft_tokens + 1) if a >= 1.0 else (1.0 - a ** (draft_tokens + 1)) / (1.0 - a)


def kv_blocks(
    c: StepCoefficients,
    memory_bytes: float,
    framework_overhead_bytes: float,
    config: EngineConfig,
    *,
    flag: str = "--kv-block-size",
) -> int:
    """KV-cache blocks of one device's pool: (memory × fraction − weights − overhead) / block bytes.

    Raises :class:`SpecError` when the weights leave no room, or when one block is larger than the room
    (naming ``flag``)."""
    room = memory_bytes * config.gpu_memory_fraction - float(c.weights_bytes) - framework_overhead_bytes
    if room <= 0:
        raise SpecError(
            f"the weights ({float(c.weights_bytes) / 1e9:.1f} GB per device) and framework overhead leave no "
            f"memory for the KV cache ({memory_bytes * config.gpu_memory_fraction / 1e9:.1f} GB usable)",
            hint="use more tensor parallelism, smaller weights (--weight-precision) or a larger device",
        )
    block_bytes = config.kv_block_size * float(c.kv_bytes_per_token)
    n = int(room // block_bytes)
    if n < 1:
        raise SpecError(
            f"{flag} {config.kv_block_size}: one KV block ({block_bytes / 1e9:.3g} GB) is larger than the "
            f"memory left for the KV cache ({room / 1e9:.3g} GB)",
            hint="use a smaller block (vLLM uses 16 tokens) or free memory",
        )
    return n


@dataclass
class SimResult:
    """What one simulated replica did. Units in names; percentiles keyed ``p50``/``p90``/``p99`` + ``mean``.

    Attributes:
        requests: completed requests.
        duration_s: first arrival to last completion. Units: s.
        throughput_rps / output_tokens_per_s / total_tokens_per_s: completed over ``duration_s``.
        offered_rps: the workload's arrival rate (None for a closed loop).
        ttft_s / itl_s / e2e_s / queue_s / tpot_s: distributions. ITL pools every gap between consecutive
            output tokens of all requests (speculative decoding: a step's time over its tokens); TPOT is per
            request (E2E − TTFT) / (output − 1); queueing is arrival to first scheduled iteration.
        kv_occupancy_mean / kv_occupancy_max: share of KV blocks in use (time-weighted mean over
            ``duration_s``; max).
        kv_blocks_total: blocks in the pool.
        preemptions: sequences preempted (recompute).
        iterations: engine iterations simulated (steps inside closed-form stretches included).
        event_steps: iterations the loop actually visited (the rest were summed in closed form).
        mean_running: time-weighted mean of running sequences.
        max_waiting: longest the waiting queue got.
        overloaded: the replica could not keep up with an open-loop load (throughput < 95% of the rate at
            which the requests arrived: n − 1 over the arrival span).
        cost_per_million_output_tokens_usd: replica price per hour / output tokens per hour × 10^6 (None
            without a price).
        per_request: arrays arrival_s, first_token_s, finish_s, scheduled_s, prompt_tokens,
            output_tokens, preemptions (for tests and plots; not in :meth:`to_dict`).
        wall_s: simulator wall time. Units: s.
    """

    requests: int
    duration_s: float
    throughput_rps: float
    output_tokens_per_s: float
    total_tokens_per_s: float
    offered_rps: float | None
    ttft_s: dict[str, float]
    itl_s: dict[str, float]
    tpot_s: dict[str, float]
    e2e_s: dict[str, float]
    queue_s: dict[str, float]
    kv_occupancy_mean: float
    kv_occupancy_max: float
    kv_blocks_total: int
    preemptions: int
    iterations: int
    event_steps: int
    mean_running: float
    max_waiting: int
    overloaded: bool
    cost_per_million_output_tokens_usd: float | None
    wall_s: float
    per_request: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "duration_s": self.duration_s,
            "throughput_rps": self.throughput_rps,
            "output_tokens_per_s": self.output_tokens_per_s,
            "total_tokens_per_s": self.total_tokens_per_s,
            "offered_rps": self.offered_rps,
            "ttft_s": dict(self.ttft_s),
            "itl_s": dict(self.itl_s),
            "tpot_s": dict(self.tpot_s),
            "e2e_s": dict(self.e2e_s),
            "queue_s": dict(self.queue_s),
            "kv_occupancy_mean": self.kv_occupancy_mean,
            "kv_occupancy_max": self.kv_occupancy_max,
            "kv_blocks_total": self.kv_blocks_total,
            "preemptions": self.preemptions,
            "iterations": self.iterations,
            "event_steps": self.event_steps,
            "mean_running": self.mean_running,
            "max_waiting": self.max_waiting,
            "overloaded": self.overloaded,
            "cost_per_million_output_tokens_usd": self.cost_per_million_output_tokens_usd,
        }


def _dist(values: np.ndarray, weights: np.ndarray | None = None) -> dict[str, float]:
    """Mean and percentiles (weighted: the smallest value whose cumulative weight reaches p%)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"mean": 0.0, **{f"p{p}": 0.0 for p in PERCENTILES}}
    if weights is None:
        out = {"mean": float(v.mean())}
        for p, x in zip(PERCENTILES, np.percentile(v, PERCENTILES), strict=True):
            out[f"p{p}"] = float(x)
        return out
    w = np.asarray(weights, dtype=np.float64)
    order = np.argsort(v, kind="stable")
    vs, ws = v[order], w[order]
    cw = np.cumsum(ws)
    total = cw[-1]
    out = {"mean": float((vs * ws).sum() / total)}
    for p in PERCENTILES:
        i = int(np.searchsorted(cw, total * p / 100.0, side="left"))
        out[f"p{p}"] = float(vs[min(i, vs.size - 1)])
    return out


class _Run:
    """Closed-form sums of a decode-only stretch: step j takes max(ca + cb·j, ma + mb·j) + f."""

    __slots__ = ("ca", "cb", "f", "ma", "mb")

    def __init__(self, ca: float, cb: float, ma: float, mb: float, f: float) -> None:
        self.ca, self.cb, self.ma, self.mb, self.f = ca, cb, ma, mb, f

    def step(self, j: float) -> float:
        x = self.ca + self.cb * j
        y = self.ma + self.mb * j
        return (x if x >= y else y) + self.f

    def total(self, m: int) -> float:
        """Sum of steps 0..m−1."""
        if m <= 0:
            return 0.0
        ca, cb, ma, mb = self.ca, self.cb, self.ma, self.mb
        # Split at the first j where the other line wins (the lines cross at most once).
        if cb != mb:
            jx = (ma - ca) / (cb - mb)
            k = min(max(math.ceil(jx), 0), m)
            if 0 < k < m:
                return (
                    _affine_max_sum(ca, cb, ma, mb, 0, k) + _affine_max_sum(ca, cb, ma, mb, k, m) + self.f * m
                )
        return _affine_max_sum(ca, cb, ma, mb, 0, m) + self.f * m

    def steps_until(self, target: float, m_max: int) -> int:
        """Smallest m in [1, m_max] with total(m) >= target (m_max if none): the root of the quadratic
        partial sum of the first line (a guess), corrected by a few exact evaluations."""
        if m_max <= 1:
            return 1
        # Guess with the line that wins at step 0: S(m) = (a + f)·m + b·m(m − 1)/2.
        x0, y0 = self.ca, self.ma
        a, b = (x0, self.cb) if x0 >= y0 else (y0, self.mb)
        a += self.f
        if b > 1e-300:
            A, B = b / 2.0, a - b / 2.0
            guess = (-B + math.sqrt(max(B * B + 4.0 * A * target, 0.0))) / (2.0 * A)
        else:
            guess = target / a if a > 0 else float(m_max)
        m = min(max(math.ceil(guess), 1), m_max)
        tm = self.total(m)
        if tm >= target and (m == 1 or self.total(m - 1) < target):
            return m  # the usual case: the guess is exact
        if tm < target and m == m_max:
            return m_max
        if self.total(1) >= target:
            return 1
        if self.total(m_max) < target:
            return m_max
        lo, hi = 1, m_max  # total(lo) < target <= total(hi)
        if tm >= target:
            hi = m
            step = 1
            while hi - step >= 1 and self.total(hi - step) >= target:
                hi -= step
                step *= 2
            lo = max(hi - step, 1)
        else:
            lo = m
            step = 1
            while lo + step < m_max and self.total(lo + step) < target:
                lo += step
                step *= 2
            hi = min(lo + step, m_max)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.total(mid) >= target:
                hi = mid
            else:
                lo = mid
        return hi


def _affine_max_sum(ca: float, cb: float, ma: float, mb: float, j0: int, j1: int) -> float:
    """Σ_{j0 <= j < j1} max(ca + cb·j, ma + mb·j), where one line wins on the whole range."""
    n = j1 - j0
    if n <= 0:
        return 0.0
    mid = (j0 + j1 - 1) / 2.0
    x = ca + cb * mid
    y = ma + mb * mid
    return n * (x if x >= y else y)


def simulate(
    c: StepCoefficients,
    workload: Workload,
    config: EngineConfig,
    *,
    n_blocks: int,
    price_usd_per_h: float | None = None,
    max_context: int | None = None,
    closed_form: bool = True,
    share_prefix_blocks: bool = True,
) -> SimResult:
    """Run the engine loop (module docstring) over ``workload`` on one replica with iteration costs ``c``
    and ``n_blocks`` KV blocks (:func:`kv_blocks`); ``price_usd_per_h`` is the replica's price.
    ``closed_form=False`` steps every iteration one by one (slow; the tests compare both).
    ``share_prefix_blocks``: hold the prefix-cache hit's full blocks once for all running sequences (True,
    module docstring) or once per sequence (False: distinct prefixes, an upper bound on memory)."""
    t_wall = time.perf_counter()
    P = [int(x) for x in workload.prompt_tokens]
    Out = [int(x) for x in workload.output_tokens]
    n_req = len(P)
    bs = config.kv_block_size
    spec_k = config.spec_draft_tokens
    q = float(spec_k + 1)
    E = speculative_tokens_per_step(spec_k, config.spec_acceptance)
    exact_blocks = spec_k == 0
    budget_max = config.budget(max(P))
    max_seqs = config.max_num_seqs
    chunked = config.chunked_prefill
    if chunked and budget_max < q:
        raise SpecError(
            f"--max-num-batched-tokens {budget_max} is below the {int(q)} tokens one decode step needs",
            hint="raise --max-num-batched-tokens",
        )
    if not chunked and max(P) > budget_max:
        raise SpecError(
            f"--max-num-batched-tokens {budget_max} is below the longest prompt ({max(P)} tokens) and chunked "
            "prefill is off",
            hint="raise --max-num-batched-tokens or turn chunked prefill on",
        )
    for i in range(n_req):
        need = -(-(P[i] + Out[i] + spec_k) // bs) + (1 if spec_k else 0)
        if need > n_blocks:
            raise SpecError(
                f"request {i + 1} ({P[i]} + {Out[i]} tokens) needs {need} KV blocks but the pool holds {n_blocks}",
                hint="shorten the request, use more tensor parallelism or a larger --gpu-memory-fraction",
            )
        if max_context is not None and P[i] + Out[i] > max_context:
            raise SpecError(
                f"request {i + 1} ({P[i]} + {Out[i]} tokens) exceeds the model's context of {max_context} tokens",
                hint="shorten the prompts or outputs",
            )
    share = workload.prefix_share
    cached0 = [min(int(share * p), p - 1) for p in P]
    # Shared prefix blocks (module docstring): the full blocks of each request's cache hit.
    shared_on = share_prefix_blocks and share > 0.0
    sh = [h // bs for h in cached0] if shared_on else []

    # Spec decoding: draft passes add a fixed time per decode iteration.
    draft_s = 0.0
    if spec_k:
        base = step_parts(c, decode_seqs=1.0, decode_ctx_tokens=0.0)
        draft_s = spec_k * config.spec_draft_cost_frac * float(base.fixed_s + base.memory_s)

    # Compute and memory time are linear in the decode context: their slopes per context token.
    _a = step_parts(c, decode_seqs=1.0, decode_ctx_tokens=0.0, decode_query_tokens=q)
    _b = step_parts(c, decode_seqs=1.0, decode_ctx_tokens=1.0, decode_query_tokens=q)
    compute_per_ctx = float(_b.compute_s - _a.compute_s)
    memory_per_ctx = float(_b.memory_s - _a.memory_s)

    # ---- per-request state ------------------------------------------------------------------------
    arrival = [0.0] * n_req
    first_tok = [math.nan] * n_req
    finish = [math.nan] * n_req
    sched = [math.nan] * n_req
    preempted = [0] * n_req
    gen = [0] * n_req  # tokens emitted so far
    pf_total = [0] * n_req  # tokens the current prefill must cover (cached prefix included)
    pf_done = [0] * n_req  # of which in the KV cache
    held = [0] * n_req  # blocks held by a prefill-phase sequence
    a_off = [0.0] * n_req  # decode: cached tokens after step G = a_off + E·(G + 1)
    q_blk = [0] * n_req  # decode, exact blocks: blocks after step G = q_blk + (r + G) // bs
    r_blk = [0] * n_req
    version = [0] * n_req
    joined_end = [0.0] * n_req  # time the sequence's last prefill ended (its last token before decoding)
    last_tok = [0.0] * n_req

    # Arrivals: a heap of (time, request) — the whole open-loop schedule, or the closed loop's next ones.
    events: list[tuple[float, int]] = []
    next_req = 0
    if workload.arrival_s is not None:
        arr = [float(x) for x in workload.arrival_s]
        events = [(arr[i], i) for i in range(n_req)]
        heapq.heapify(events)
        next_req = n_req
    else:
        conc = int(workload.concurrency or 1)
        for i in range(min(conc, n_req)):
            heapq.heappush(events, (0.0, i))
        next_req = min(conc, n_req)

    waiting: deque[int] = deque()
    running: dict[int, bool] = {}  # admission order; True = decode phase, False = prefill phase
    prefilling: list[int] = []  # prefill-phase sequences in admission order
    finish_heap: list[tuple[int, int, int]] = []  # (last decode step, version, request)
    n_dec = 0
    a_sum = 0.0
    q_sum = 0
    r_cnt = [0] * bs
    held_pf = 0

    now = 0.0
    G = 0  # index of the next decode step
    last_dec_end = 0.0
    pending: dict[float, int] = {}  # decode sequences whose last token came from a prefill, by time
    done = 0
    iterations = 0
    event_steps = 0
    itl_v: list[float] = []
    itl_w: list[float] = []
    kv_int = 0.0
    kv_max = 0
    run_int = 0.0
    max_wait = 0
    n_preempt = 0
    # Running sequences' shared blocks: held once (the longest prefix), not once each.
    sh_sum = 0  # Σ s_i over running sequences
    sh_max = 0  # max s_i over running sequences
    sh_cnt: dict[int, int] = {}  # running sequences per s_i
    sh_heap: list[int] = []  # −s_i with a running sequence (lazy deletion)
    adj = 0  # sh_max − sh_sum: what the pool holds fewer than the per-sequence count (<= 0)

    def dec_blocks(g: int) -> int:
        """Blocks the decode sequences hold after step ``g``."""
        if n_dec == 0:
            return 0
        if exact_blocks:
            gq, gr = divmod(g, bs)
            return q_sum + n_dec * gq + (sum(r_cnt[bs - gr :]) if gr else 0)
        ctx = a_sum + n_dec * E * (g + 1)
        return math.ceil((ctx + n_dec * spec_k) / bs + 0.5 * n_dec)

    def add_shared(i: int) -> None:
        """Sequence ``i`` starts running: it references its shared prefix blocks."""
        nonlocal sh_sum, sh_max, adj
        v = sh[i]
        if v:
            sh_sum += v
            k = sh_cnt.get(v, 0)
            sh_cnt[v] = k + 1
            if k == 0:
                heapq.heappush(sh_heap, -v)
            if v > sh_max:
                sh_max = v
            adj = sh_max - sh_sum

    def drop_shared(i: int) -> None:
        """Sequence ``i`` stops running (finished or preempted): it releases its shared prefix blocks."""
        nonlocal sh_sum, sh_max, adj
        v = sh[i]
        if v:
            sh_sum -= v
            k = sh_cnt[v] - 1
            sh_cnt[v] = k
            if k == 0 and v == sh_max:
                while sh_heap and sh_cnt[-sh_heap[0]] == 0:
                    heapq.heappop(sh_heap)
                sh_max = -sh_heap[0] if sh_heap else 0
            adj = sh_max - sh_sum

    def remove_decode(i: int) -> None:
        nonlocal n_dec, a_sum, q_sum
        n_dec -= 1
        a_sum -= a_off[i]
        if exact_blocks:
            q_sum -= q_blk[i]
            r_cnt[r_blk[i]] -= 1
        version[i] += 1

    def preempt_last() -> None:
        """Preempt the most recently admitted running sequence (recompute)."""
        nonlocal held_pf, n_preempt
        victim = next(reversed(running))
        is_dec = running.pop(victim)
        if is_dec:
            remove_decode(victim)
            jt = joined_end[victim]
            if jt > last_dec_end and jt in pending:
                pending[jt] -= 1
                if pending[jt] == 0:
                    del pending[jt]
                last_tok[victim] = jt
            else:
                last_tok[victim] = last_dec_end
        else:
            prefilling.remove(victim)
            held_pf -= held[victim]
        held[victim] = 0
        if shared_on:
            drop_shared(victim)
        preempted[victim] += 1
        n_preempt += 1
        # Recompute: prompt + every token generated so far, minus the prefix-cache hit.
        pf_total[victim] = P[victim] + gen[victim]
        pf_done[victim] = cached0[victim]
        waiting.appendleft(victim)

    def join_decode(i: int, t_end: float) -> None:
        """Sequence ``i`` finished its prefill at ``t_end``: it decodes from step G on."""
        nonlocal n_dec, a_sum, q_sum
        steps = math.ceil((Out[i] - gen[i]) / E - 1e-9)
        ctx = pf_total[i]
        a = ctx - E * G
        a_off[i] = a
        n_dec += 1
        a_sum += a
        if exact_blocks:
            # blocks after step g = ceil((ctx + 1 + g − G) / bs) = floor((ctx + bs − G + g) / bs)
            b = ctx + bs - G
            qq, rr = divmod(b, bs)
            q_blk[i] = qq
            r_blk[i] = rr
            q_sum += qq
            r_cnt[rr] += 1
        version[i] += 1
        heapq.heappush(finish_heap, (G + steps - 1, version[i], i))
        running[i] = True
        joined_end[i] = t_end
        pending[t_end] = pending.get(t_end, 0) + 1

    def finish_req(i: int, t_end: float) -> None:
        nonlocal done, next_req
        if shared_on:
            drop_shared(i)
        finish[i] = t_end
        done += 1
        if workload.concurrency is not None and next_req < n_req:
            heapq.heappush(events, (t_end, next_req))
            next_req += 1

    def admit_arrivals() -> None:
        nonlocal max_wait
        while events and events[0][0] <= now:
            t, i = heapq.heappop(events)
            arrival[i] = t
            pf_total[i] = P[i]
            pf_done[i] = cached0[i]
            waiting.append(i)
        if len(waiting) > max_wait:
            max_wait = len(waiting)

    while done < n_req:
        admit_arrivals()
        if not running and not waiting:
            if not events:
                break
            now = events[0][0]
            continue

        # ---- a decode-only stretch in closed form ----------------------------------------------------
        # (only right after a decode step: a stall since then belongs to the next step's ITL)
        # (pending joiners whose prefill ended now have the same first gap as everyone: one step)
        if (
            closed_form
            and n_dec
            and not prefilling
            and now == last_dec_end
            and (not pending or all(t == now for t in pending))
        ):
            blocked = True
            if waiting and len(running) < max_seqs:
                head = waiting[0]
                if chunked:
                    room = budget_max - int(n_dec * q)
                    chunk = min(pf_total[head] - pf_done[head], room)
                    if room > 0:
                        need = -(-(pf_done[head] + chunk) // bs)
                        if shared_on:
                            need -= min(sh[head], sh_max)
                        blocked = need > n_blocks - dec_blocks(G) - held_pf - adj
                else:
                    need = -(-pf_total[head] // bs)
                    if shared_on:
                        need -= min(sh[head], sh_max)
                    blocked = need > n_blocks - dec_blocks(G - 1) - held_pf - adj
            if blocked:
                # Steps that fit in the KV pool.
                free_after = n_blocks - held_pf - adj
                if dec_blocks(G) <= free_after:
                    while finish_heap and finish_heap[0][1] != version[finish_heap[0][2]]:
                        heapq.heappop(finish_heap)
                    m_fin = finish_heap[0][0] - G + 1
                    m = m_fin
                    # Cheap upper bound first (one block more per sequence than the exact count).
                    g_end = G + m - 1
                    roomy = exact_blocks and q_sum + n_dec * (g_end // bs + 1) <= free_after
                    if not roomy and dec_blocks(g_end) > free_after:
                        lo, hi = 1, m - 1  # dec_blocks(G + lo - 1) fits, G + hi may not
                        while lo < hi:
                            mid = (lo + hi + 1) // 2
                            if dec_blocks(G + mid - 1) <= free_after:
                                lo = mid
                            else:
                                hi = mid - 1
                        m = lo
                    S0 = a_sum + n_dec * E * (G + 1)
                    p0 = step_parts(c, decode_seqs=float(n_dec), decode_ctx_tokens=S0, decode_query_tokens=q)
                    grow = n_dec * E  # context tokens added per step
                    run = _Run(
                        p0.compute_s,
                        grow * compute_per_ctx,
                        p0.memory_s,
                        grow * memory_per_ctx,
                        p0.fixed_s + draft_s,
                    )
                    if events and not waiting:
                        target = events[0][0] - now
                        m = 1 if target <= 0 else min(m, run.steps_until(target, m))
                    dur = run.total(m)
                    u0 = dec_blocks(G) + adj
                    u1 = dec_blocks(G + m - 1) + adj
                    kv_int += 0.5 * (u0 + u1) * dur
                    if u1 > kv_max:
                        kv_max = u1
                    run_int += n_dec * dur
                    # ITL: the stretch's step times, as up to 4 equal-weight points.
                    t_first = run.step(0)
                    t_last = run.step(m - 1)
                    npts = min(m, 4)
                    w = n_dec * E * m / npts
                    for k in range(npts):
                        itl_v.append((t_first + (t_last - t_first) * (k + 0.5) / npts) / E)
                        itl_w.append(w)
                    pending.clear()
                    now += dur
                    last_dec_end = now
                    G += m
                    iterations += m
                    event_steps += 1
                    while finish_heap and finish_heap[0][0] <= G - 1:
                        _g, ver, i = heapq.heappop(finish_heap)
                        if ver != version[i]:
                            continue
                        remove_decode(i)
                        del running[i]
                        gen[i] = Out[i]
                        finish_req(i, now)
                    continue

        # ---- one iteration ---------------------------------------------------------------------------
        budget = budget_max
        pf_sched: list[tuple[int, int]] = []  # (request, chunk)
        run_decode = n_dec > 0
        if chunked:
            if run_decode:
                # Make room for this decode step; preempt from the back of the running list.
                while n_dec and dec_blocks(G) + held_pf + adj > n_blocks:
                    preempt_last()
                run_decode = n_dec > 0
                budget -= int(n_dec * q)
            used = (dec_blocks(G) if run_decode else dec_blocks(G - 1)) + held_pf + adj
            for i in prefilling:
                if budget <= 0:
                    break
                chunk = min(pf_total[i] - pf_done[i], budget)
                need = -(-(pf_done[i] + chunk) // bs) - held[i]
                if used + need > n_blocks:
                    break
                used += need
                budget -= chunk
                pf_sched.append((i, chunk))
            while waiting and budget > 0 and len(running) < max_seqs:
                i = waiting[0]
                chunk = min(pf_total[i] - pf_done[i], budget)
                need = -(-(pf_done[i] + chunk) // bs)
                if shared_on:
                    need -= min(sh[i], sh_max)  # the shared blocks a running sequence already holds
                if used + need > n_blocks:
                    break
                waiting.popleft()
                used += need
                budget -= chunk
                running[i] = False
                if shared_on:
                    add_shared(i)
                prefilling.append(i)
                if math.isnan(sched[i]):
                    sched[i] = now
                pf_sched.append((i, chunk))
        else:
            used = dec_blocks(G - 1) + held_pf + adj
            while waiting and len(running) < max_seqs:
                i = waiting[0]
                chunk = pf_total[i] - pf_done[i]
                # A recomputed sequence (prompt + generated tokens) may exceed the budget: it goes alone.
                if chunk > budget and (pf_sched or chunk <= budget_max):
                    break
                need = -(-pf_total[i] // bs)
                if shared_on:
                    need -= min(sh[i], sh_max)
                if used + need > n_blocks:
                    break
                waiting.popleft()
                used += need
                budget -= chunk
                running[i] = False
                if shared_on:
                    add_shared(i)
                prefilling.append(i)
                if math.isnan(sched[i]):
                    sched[i] = now
                pf_sched.append((i, chunk))
            if pf_sched:
                run_decode = False
            elif run_decode:
                while n_dec and dec_blocks(G) + held_pf + adj > n_blocks:
                    preempt_last()
                run_decode = n_dec > 0
        if not pf_sched and not run_decode:
            if not running:
                raise SpecError("the simulator cannot admit the next request (engine settings too small)")
            preempt_last()  # prefills stuck waiting for each other's blocks: free the newest
            continue

        # Aggregates of this iteration.
        pt = 0
        pairs = 0.0
        pctx = 0
        for i, chunk in pf_sched:
            s = pf_done[i]
            pt += chunk
            pairs += chunk * s + chunk * (chunk + 1) / 2.0
            pctx += s
        nd = n_dec if run_decode else 0
        S = a_sum + n_dec * E * (G + 1) if run_decode else 0.0
        parts = step_parts(
            c,
            prefill_tokens=float(pt),
            prefill_seqs=float(len(pf_sched)),
            prefill_pairs=pairs,
            prefill_ctx_tokens=float(pctx),
            decode_seqs=float(nd),
            decode_ctx_tokens=S,
            decode_query_tokens=q,
        )
        dt = (parts.compute_s if parts.compute_s >= parts.memory_s else parts.memory_s) + parts.fixed_s
        if nd:
            dt += draft_s
        t_end = now + dt
        occ = used if pf_sched else (dec_blocks(G) + held_pf + adj)
        kv_int += occ * dt
        if occ > kv_max:
            kv_max = occ
        run_int += len(running) * dt
        iterations += 1
        event_steps += 1

        if run_decode:
            # ITL of this step: since the last decode step, or since the prefill that emitted the last token.
            n_main = n_dec - sum(pending.values())
            if n_main > 0:
                itl_v.append((t_end - last_dec_end) / E)
                itl_w.append(n_main * E)
            for tj, cnt in pending.items():
                itl_v.append((t_end - tj) / E)
                itl_w.append(cnt * E)
            pending.clear()
            last_dec_end = t_end
            G += 1
        now = t_end
        # Prefill progress.
        for i, chunk in pf_sched:
            pf_done[i] += chunk
            blocks = -(-pf_done[i] // bs)
            held_pf += blocks - held[i]
            held[i] = blocks
            if pf_done[i] >= pf_total[i]:
                prefilling.remove(i)
                held_pf -= held[i]
                held[i] = 0
                if math.isnan(first_tok[i]):
                    first_tok[i] = now
                else:
                    itl_v.append(now - last_tok[i])
                    itl_w.append(1.0)
                gen[i] += 1
                if gen[i] >= Out[i]:
                    del running[i]
                    finish_req(i, now)
                else:
                    join_decode(i, now)
        if run_decode:
            while finish_heap and finish_heap[0][0] <= G - 1:
                _g, ver, i = heapq.heappop(finish_heap)
                if ver != version[i]:
                    continue
                remove_decode(i)
                del running[i]
                gen[i] = Out[i]
                finish_req(i, now)

    # ---- results ------------------------------------------------------------------------------------
    arr_a = np.asarray(arrival)
    fin = np.asarray(finish)
    ft = np.asarray(first_tok)
    sc = np.asarray(sched)
    Pa = np.asarray(P, dtype=np.float64)
    Oa = np.asarray(Out, dtype=np.float64)
    start = float(arr_a.min())
    duration = float(fin.max() - start) if n_req else 0.0
    duration = max(duration, 1e-12)
    out_tok = float(Oa.sum())
    tput = n_req / duration
    multi = Oa > 1
    tpot = (fin[multi] - ft[multi]) / (Oa[multi] - 1.0)
    lag = c.first_token_lag_steps
    if lag > 0.0:
        # Every token reaches the client `lag` decode iterations late (EngineProfile.first_token_lag_steps):
        # TTFT and end-to-end shift by lag x the request's own decode step; the gaps between tokens do not.
        step = np.full(n_req, float(np.mean(tpot)) if tpot.size else 0.0)
        step[multi] = tpot
        ft = ft + lag * step
        fin = fin + lag * step
    offered = workload.rate_rps
    span = float(arr_a.max() - start)
    arriving = (n_req - 1) / span if span > 0 and n_req > 1 else None
    cost = None
    if price_usd_per_h is not None:
        cost = price_usd_per_h / (out_tok / duration * 3600.0) * 1e6
    return SimResult(
        requests=n_req,
        duration_s=duration,
        throughput_rps=tput,
        output_tokens_per_s=out_tok / duration,
        total_tokens_per_s=(out_tok + float(Pa.sum())) / duration,
        offered_rps=offered,
        ttft_s=_dist(ft - arr_a),
        itl_s=_dist(np.asarray(itl_v), np.asarray(itl_w)),
        tpot_s=_dist(tpot),
        e2e_s=_dist(fin - arr_a),
        queue_s=_dist(sc - arr_a),
        kv_occupancy_mean=kv_int / duration / n_blocks,
        kv_occupancy_max=kv_max / n_blocks,
        kv_blocks_total=n_blocks,
        preemptions=n_preempt,
        iterations=iterations,
        event_steps=event_steps,
        mean_running=run_int / duration,
        max_waiting=max_wait,
        overloaded=bool(workload.concurrency is None and arriving is not None and tput < 0.95 * arriving),
        cost_per_million_output_tokens_usd=cost,
        wall_s=time.perf_counter() - t_wall,
        per_request={
            "arrival_s": arr_a,
            "first_token_s": ft,
            "finish_s": fin,
            "scheduled_s": sc,
            "prompt_tokens": Pa,
            "output_tokens": Oa,
            "preemptions": np.asarray(preempted),
        },
    )
