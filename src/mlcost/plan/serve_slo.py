"""``plan_serve_slo``: the cheapest serving fleet that carries ``rps`` requests/s within p90 latency targets,
queueing included.

A candidate replica is device × TP × weight precision × engine settings (chunked prefill with a token budget,
or whole-prompt prefill). A fleet is ``r`` identical replicas behind a load balancer that splits the Poisson
arrivals evenly (each replica sees a Poisson stream of rps / r). Notation:

* ``T_ttft``, ``T_itl``: the p90 targets; ``p90_ttft(x, λ)``, ``p90_itl(x, λ)``: what the simulator
  (:mod:`mlcost.estimate.serve_sim`) predicts for replica ``x`` at arrival rate λ;
* ``cost(x, r) = r · tp(x) · price(x)`` per hour, price = the cheapest allowed price row that can supply
  ``r · tp`` devices.

Problem: min over (x, r) of cost(x, r) s.t. p90_ttft(x, rps/r) ≤ T_ttft and p90_itl(x, rps/r) ≤ T_itl and the
replica keeps up (not overloaded).

Search:

1. **prune with the closed form**: the unloaded TTFT (the prompt's prefill iterations alone) and the
   single-sequence decode step are lower bounds on any percentile; a candidate whose bound misses a target
   is dropped. Its capacity (the static model at its largest batch, :func:`~mlcost.estimate.serve.serve_kernel`)
   gives r_lb = ceil(rps / (1.25 · capacity)) (the 1.25 leaves room for the bound being rough);
2. **best-first**: candidates in order of cost(x, r_lb); stop when the next bound is no cheaper than the best
   fleet found;
3. **replicas**: nodes (x, r) are visited in order of cost(x, r) (r = r_lb, r_lb + 1, ... up to 8, then
   steps of r/8); each is simulated at rps / r — first a screening run of the first 500 requests (a p90 above
   1.3× a target or an overloaded replica rejects the node), then ``sim_requests`` requests (same seed for every
   candidate). The latencies fall as r grows, so the first node that meets the targets is the cheapest fleet
   (bisection between the last failing count and it); a candidate stops growing when one more step gains
   < 3% or its load is already light.

**Prefix cache**: with ``prefix_share`` > 0 every simulated request finds that share of its prompt in the
prefix cache (not recomputed); with ``share_prefix_blocks`` (default) its full KV blocks are held once for all
running sequences (one common prefix; :mod:`mlcost.estimate.serve_sim`), else once per sequence. The
closed-form bounds of step 1 start the prompt's prefill after the hit, and the capacity is the static model's
with the same prefix cache (:func:`~mlcost.estimate.serve.serve_kernel`) at the largest batch with the shared
blocks counted once.

The **binding SLO** is the target that fails with one replica fewer (``throughput`` when that replica
would be overloaded); with one replica, the target with the least slack. If no candidate meets the targets
the answer says which target fails and names the closest candidate (smallest max(p90/target)) with its
simulated percentiles.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlcost.catalog.protocol import CatalogLike
from mlcost.errors import SpecError, UnknownNameError
from mlcost.estimate.serve import WEIGHT_BYTES, _compute_peak, prefix_cache_assumption, serve_kernel
from mlcost.estimate.serve_sim import EngineConfig, SimResult, kv_blocks, simulate
from mlcost.estimate.serve_step import KV_BLOCK_TOKENS, default_engine, iteration_time_s, replica_coefficients
from mlcost.estimate.serve_workload import Workload
from mlcost.plan.prices import price_rows
from mlcost.plan.serve import check_serve_search
from mlcost.spec.job import BYTES_PER_ELEMENT
from mlcost.spec.model import ModelSpec
from mlcost.units import S_PER_H, S_PER_MONTH

__all__ = ["DEFAULT_ENGINE_VARIANTS", "SloServePlan", "SloServePlanResult", "plan_serve_slo"]

#: Engine settings tried per replica: (chunked prefill, max_num_batched_tokens; None = vLLM's default).
DEFAULT_ENGINE_VARIANTS: tuple[tuple[bool, int | None], ...] = ((True, 8192), (True, 2048), (False, None))
_QUALITY_ORDER = {"fp32": 0, "bf16": 0, "fp16": 0, "fp8": 1, "int8": 2, "int4": 3}
#: Slack on the closed-form capacity when taking the first replica count to simulate.
CAPACITY_SLACK = 1.25
#: A short screening simulation (the first requests of the same workload) whose p90 is above this multiple of
#: a target, or that is overloaded, rejects a node without the full simulation.
SCREEN_MARGIN = 1.3


@dataclass
class SloServePlan:
    """One fleet that meets (or, for the closest infeasible candidate, misses) the targets.

    Attributes: device, tp, weight_precision, kv_precision, engine, chunked_prefill,
    max_num_batched_tokens, max_num_seqs: the replica; replicas, devices: the fleet; provider, region,
    pricing, price_usd_per_device_h (USD/device-hour), cost_per_hour_usd, monthly_cost_usd (720 h),
    cost_per_million_output_tokens_usd (at this demand); requests_per_s_per_replica; simulated: the
    simulator's percentiles (s) at that load; binding_slo: ``ttft_p90``, ``itl_p90`` or ``throughput``;
    binding_detail: why; meets: whether every target is met; quality_risk of the weight format.
    """

    device: str
    tp: int
    weight_precision: str
    kv_precision: str
    engine: str
    chunked_prefill: bool
    max_num_batched_tokens: int
    max_num_seqs: int
    replicas: int
    devices: int
    provider: str | None
    region: str | None
    pricing: str
    price_usd_per_device_h: float
    cost_per_hour_usd: float
    monthly_cost_usd: float
    cost_per_million_output_tokens_usd: float
    requests_per_s_per_replica: float
    simulated: dict[str, Any]
    binding_slo: str | None
    binding_detail: str
    meets: bool
    quality_risk: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def label(self) -> str:
        chunk = (
            f"chunked prefill {self.max_num_batched_tokens} tokens" if self.chunked_prefill else "no chunking"
        )
        return (
            f"{self.replicas} × ({self.tp} × {self.device}) {self.weight_precision}, {self.engine}, {chunk}"
        )


@dataclass
class SloServePlanResult:
    """Outcome of :func:`plan_serve_slo` (docs/plan.md lists every key of :meth:`to_dict`)."""

    status: str
    model: str
    requests_per_s: float
    prompt_len: int
    output_len: int
    ttft_p90_s: float | None
    itl_p90_s: float | None
    plans: list[SloServePlan]
    closest: SloServePlan | None
    failing_slo: list[str]
    infeasible: list[str]
    notes: list[str]
    assumptions: list[dict[str, Any]]
    price_snapshot_date: str
    candidates: int
    pruned_by_closed_form: int
    candidates_simulated: int
    simulations: int
    elapsed_s: float
    prefix_share: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "plan-serve-slo",
            "model_kind": "continuous-batching-simulation",
            "status": self.status,
            "model": self.model,
            "traffic": {
                "requests_per_s": self.requests_per_s,
                "prompt_len": self.prompt_len,
                "output_len": self.output_len,
                "output_tokens_per_s": self.requests_per_s * self.output_len,
                "prefix_share": self.prefix_share,
            },
            "targets": {"ttft_p90_s": self.ttft_p90_s, "itl_p90_s": self.itl_p90_s},
            "plans": [p.to_dict() for p in self.plans],
            "closest": self.closest.to_dict() if self.closest is not None else None,
            "failing_slo": list(self.failing_slo),
            "infeasible": list(self.infeasible),
            "notes": list(self.notes),
            "assumptions": list(self.assumptions),
            "price_snapshot_date": self.price_snapshot_date,
            "candidates": self.candidates,
            "pruned_by_closed_form": self.pruned_by_closed_form,
            "candidates_simulated": self.candidates_simulated,
            "simulations": self.simulations,
            "elapsed_s": self.elapsed_s,
        }


@dataclass
class _Cand:
    dev: Any
    prof: Any
    eng: Any
    tp: int
    wp: str
    chunked: bool
    budget: int
    coef: Any
    n_blocks: int
    rows: Any
    cap_rps: float
    ttft0_s: float
    itl0_s: float
    e2e0_s: float
    r_lb: int
    index: int = 0
    sims: dict[int, SimResult] = field(default_factory=dict)
    screens: dict[int, SimResult] = field(default_factory=dict)

    def price_for(self, n_devices: int) -> tuple[float, int] | None:
        """Cheapest allowed row that can supply ``n_devices`` (price, row index)."""
        ok = np.flatnonzero(self.rows.max_count >= n_devices)
        if ok.size == 0:
            return None
        i = int(ok[np.argmin(self.rows.usd_per_device_h[ok])])
        return float(self.rows.usd_per_device_h[i]), i

    @property
    def min_price(self) -> float:
        return float(np.min(self.rows.usd_per_device_h))


def _ratios(sim: SimResult, ttft_t: float | None, itl_t: float | None) -> dict[str, float]:
    out: dict[str, float] = {}
    if ttft_t is not None:
        out["ttft_p90"] = sim.ttft_s["p90"] / ttft_t
    if itl_t is not None:
        out["itl_p90"] = sim.itl_s["p90"] / itl_t
    return out


def _meets(sim: SimResult, ttft_t: float | None, itl_t: float | None) -> bool:
    return not sim.overloaded and all(v <= 1.0 for v in _ratios(sim, ttft_t, itl_t).values())


def _sim_summary(sim: SimResult) -> dict[str, Any]:
    return {
        "ttft_s": dict(sim.ttft_s),
        "itl_s": dict(sim.itl_s),
        "e2e_s": dict(sim.e2e_s),
        "queue_s": dict(sim.queue_s),
        "throughput_rps": sim.throughput_rps,
        "output_tokens_per_s": sim.output_tokens_per_s,
        "kv_occupancy_mean": sim.kv_occupancy_mean,
        "kv_occupancy_max": sim.kv_occupancy_max,
        "preemptions": sim.preemptions,
        "overloaded": sim.overloaded,
        "requests": sim.requests,
    }


def plan_serve_slo(
    model: ModelSpec,
    *,
    requests_per_s: float,
    prompt_len: int,
    output_len: int,
    ttft_p90_s: float | None = None,
    itl_p90_s: float | None = None,
    devices: Sequence[str] | None = None,
    providers: Sequence[str] | None = None,
    regions: Sequence[str] | None = None,
    spot: bool = False,
    weight_precisions: Sequence[str] = ("bf16", "fp8", "int8", "int4"),
    tps: Sequence[int] = (1, 2, 4, 8),
    kv_precision: str = "bf16",
    engine: str | None = None,
    engine_variants: Sequence[tuple[bool, int | None]] = DEFAULT_ENGINE_VARIANTS,
    max_num_seqs: int = 256,
    sim_requests: int = 2000,
    seed: int = 0,
    top: int = 3,
    max_replicas: int = 100_000,
    catalog: CatalogLike | None = None,
    prefix_share: float = 0.0,
    share_prefix_blocks: bool = True,
) -> SloServePlanResult:
    """Plan the cheapest fleet meeting the p90 targets (module docstring)."""
    from mlcost.catalog import builtin_catalog

    t0 = time.perf_counter()
    cat = catalog if catalog is not None else builtin_catalog()
    if not (math.isfinite(requests_per_s) and requests_per_s > 0):
        raise SpecError(f"--rps must be a finite number > 0, got {requests_per_s!r}", hint="e.g. --rps 2")
    for flag, v in (("--ttft-p90-ms", ttft_p90_s), ("--itl-p90-ms", itl_p90_s)):
        if v is not None and not (math.isfinite(v) and v > 0):
            raise SpecError(f"{flag} must be a finite number > 0, got {v!r}")
    if ttft_p90_s is None and itl_p90_s is None:
        raise SpecError("give at least one of --ttft-p90-ms and --itl-p90-ms")
    if not (math.isfinite(prefix_share) and 0.0 <= prefix_share < 1.0):
        raise SpecError(
            f"--prefix-share must be in [0, 1), got {prefix_share!r}", hint="e.g. --prefix-share 0.8"
        )
    for name, v in (("--prompt-tokens", prompt_len), ("--output-tokens", output_len)):
        if int(v) != v or v < 1:
            raise SpecError(f"{name} must be a positive whole number, got {v!r}")
    devs, prov_t, reg_t = check_serve_search(
        cat,
        model,
        context_len=prompt_len + output_len,
        context_flags="--prompt-tokens + --output-tokens",
        weight_precisions=weight_precisions,
        kv_precision=kv_precision,
        devices=devices,
        providers=providers,
        regions=regions,
    )
    wl_cache: dict[float, Workload] = {}
    # The prefix-cache hit of one prompt (as the simulator takes it) and its full KV blocks.
    hit = min(int(prefix_share * prompt_len), prompt_len - 1)
    shared_blocks = hit // KV_BLOCK_TOKENS if share_prefix_blocks else 0
    n_screen = max(100, min(500, sim_requests // 4))

    def workload(rate: float) -> Workload:
        if rate not in wl_cache:
            wl_cache[rate] = Workload.poisson(
                rate, sim_requests, prompt_len, output_len, seed=seed, prefix_share=prefix_share
            )
        return wl_cache[rate]

    notes: list[str] = []
    unpriced: list[str] = []
    no_engine: list[str] = []
    no_fit: list[str] = []
    cands: list[_Cand] = []
    pruned: list[tuple[float, _Cand, dict[str, float]]] = []
    n_total = 0
    for dev in devs:
        rows = price_rows(cat, dev.id, providers=prov_t, regions=reg_t, spot=spot, need_price=True)
        if len(rows.pricing) == 0:
            unpriced.append(dev.id)
            continue
        try:
            eng = cat.engine_profile(engine or default_engine(dev), dev)
        except UnknownNameError:
            no_engine.append(dev.id)
            continue
        prof = cat.efficiency(dev.id)
        fitted_any = False
        for tp in tps:
            if tp > dev.devices_per_node or model.n_heads % tp:
                continue
            for wp in weight_precisions:
                if wp == "fp8" and dev.peak_for("fp8") is None:
                    continue
                try:
                    peak, compute = _compute_peak(dev, wp)
                except SpecError:
                    continue
                coef = replica_coefficients(
                    model, dev, prof, eng, tp=tp, weight_precision=wp, kv_precision=kv_precision
                )
                try:
                    nb = kv_blocks(coef, dev.memory_bytes, prof.framework_overhead_bytes, EngineConfig())
                except SpecError:
                    continue
                per_seq_blocks = -(-(prompt_len + output_len) // KV_BLOCK_TOKENS)
                if per_seq_blocks > nb:
                    continue
                fitted_any = True
                # Shared prefix blocks once, then each sequence's own (no sharing: shared_blocks = 0).
                batch = max(1, min(max_num_seqs, (nb - shared_blocks) // (per_seq_blocks - shared_blocks)))
                # Capacity: the static model with the same prefix cache (the hit is not recomputed).
                static = serve_kernel(
                    model,
                    prompt_len=prompt_len,
                    output_len=output_len,
                    batch=batch,
                    tp=tp,
                    weight_bytes=WEIGHT_BYTES[wp],
                    kv_bytes=BYTES_PER_ELEMENT[kv_precision],
                    peak_flops_per_s=peak,
                    mem_bw_bytes_per_s=dev.mem_bw_bytes_per_s,
                    memory_bytes=dev.memory_bytes,
                    devices_per_node=dev.devices_per_node,
                    intra_bw_bytes_per_s=dev.intra_node_bw_bytes_per_s,
                    inter_bw_bytes_per_s=dev.inter_node_bw_bytes_per_s,
                    profile=prof,
                    engine=eng,
                    fp8_compute=compute == "fp8",
                    prefix_share=prefix_share,
                    share_prefix_blocks=share_prefix_blocks,
                )
                cap_rps = float(static["tokens_per_s"]) / output_len
                itl0 = iteration_time_s(coef, decode_ctx=[prompt_len])
                for chunked, budget in engine_variants:
                    n_total += 1
                    b = budget if budget is not None else (8192 if chunked else max(8192, prompt_len))
                    if not chunked and b < prompt_len:
                        continue
                    # Unloaded TTFT: the prompt's prefill iterations alone.
                    ttft0 = 0.0
                    done = hit
                    step = b if chunked else prompt_len
                    while done < prompt_len:
                        n = min(step, prompt_len - done)
                        ttft0 += iteration_time_s(coef, prefill=[(n, done)])
                        done += n
                    e2e0 = ttft0 + (output_len - 1) * iteration_time_s(
                        coef, decode_ctx=[prompt_len + output_len / 2.0]
                    )
                    r_lb = max(1, math.ceil(requests_per_s / (CAPACITY_SLACK * cap_rps)))
                    cand = _Cand(
                        dev,
                        prof,
                        eng,
                        tp,
                        wp,
                        chunked,
                        b,
                        coef,
                        nb,
                        rows,
                        cap_rps,
                        ttft0,
                        itl0,
                        e2e0,
                        r_lb,
                        n_total,
                    )
                    bound = {}
                    if ttft_p90_s is not None:
                        bound["ttft_p90"] = ttft0 / ttft_p90_s
                    if itl_p90_s is not None:
                        bound["itl_p90"] = itl0 / itl_p90_s
                    if any(v > 1.0 for v in bound.values()):
                        pruned.append((max(bound.values()), cand, bound))
                        continue
                    cands.append(cand)
        if not fitted_any:
            no_fit.append(dev.id)

    def lb_cost(c: _Cand) -> float:
        return c.r_lb * c.tp * c.min_price

    cands.sort(key=lambda c: (lb_cost(c), c.tp, _QUALITY_ORDER.get(c.wp, 9)))
    n_sims = 0

    def sim_at(c: _Cand, r: int) -> SimResult:
        nonlocal n_sims
        if r not in c.sims:
            cfg = EngineConfig(
                max_num_batched_tokens=c.budget, chunked_prefill=c.chunked, max_num_seqs=max_num_seqs
            )
            c.sims[r] = simulate(
                c.coef,
                workload(requests_per_s / r),
                cfg,
                n_blocks=c.n_blocks,
                share_prefix_blocks=share_prefix_blocks,
            )
            n_sims += 1
        return c.sims[r]

    def screen_at(c: _Cand, r: int) -> SimResult:
        """The first ``screen_requests`` requests of the same workload: rejects clear misses cheaply."""
        nonlocal n_sims
        if r in c.sims:
            return c.sims[r]
        if r not in c.screens:
            cfg = EngineConfig(
                max_num_batched_tokens=c.budget, chunked_prefill=c.chunked, max_num_seqs=max_num_seqs
            )
            wl = Workload.poisson(
                requests_per_s / r, n_screen, prompt_len, output_len, seed=seed, prefix_share=prefix_share
            )
            c.screens[r] = simulate(
                c.coef, wl, cfg, n_blocks=c.n_blocks, share_prefix_blocks=share_prefix_blocks
            )
            n_sims += 1
        return c.screens[r]

    # Best-first over (candidate, replicas) nodes in order of fleet cost: the first node that meets the
    # targets is the cheapest fleet, up to the replica steps (every count up to 8, then +1/8).

    def next_r(r: int) -> int:
        return r + 1 if r < 8 else r + math.ceil(r / 8)

    def node(c: _Cand, r: int) -> tuple[float, int, int, float, int, int]:
        pr = c.price_for(r * c.tp)
        price = pr[0] if pr is not None else math.inf
        return (r * c.tp * price, r * c.tp, _QUALITY_ORDER.get(c.wp, 9), c.ttft0_s, c.index, r)

    by_id = {c.index: c for c in cands}
    heap = [node(c, c.r_lb) for c in cands]
    heapq.heapify(heap)
    last_fail: dict[int, int] = {c.index: c.r_lb - 1 for c in cands}
    last_worst: dict[int, float] = {}
    best: tuple[float, int, int, _Cand, int] | None = None  # (cost/h, devices, quality, cand, replicas)
    found: list[tuple[float, int, int, _Cand, int]] = []
    touched: set[int] = set()
    while heap:
        cost_lb, _nd, _q, _t, cid, r = heapq.heappop(heap)
        # Past the best fleet: stop (ties still fill the list of alternatives up to `top`).
        if best is not None and (cost_lb > best[0] or (cost_lb == best[0] and len(found) >= top)):
            break
        if r > max_replicas:
            continue
        c = by_id[cid]
        touched.add(cid)
        screen = screen_at(c, r)
        clear_miss = screen.overloaded or max(_ratios(screen, ttft_p90_s, itl_p90_s).values()) > SCREEN_MARGIN
        sim = screen if clear_miss else sim_at(c, r)
        if not clear_miss and _meets(sim, ttft_p90_s, itl_p90_s):
            lo, hi = last_fail[cid], r
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _meets(sim_at(c, mid), ttft_p90_s, itl_p90_s):
                    hi = mid
                else:
                    lo = mid
            pr = c.price_for(hi * c.tp)
            if pr is None:
                continue
            entry = (hi * c.tp * pr[0], hi * c.tp, _QUALITY_ORDER.get(c.wp, 9), c, hi)
            found.append(entry)
            if best is None or entry[:3] < best[:3]:
                best = entry
            continue
        last_fail[cid] = r
        worst = max(_ratios(sim, ttft_p90_s, itl_p90_s).values())
        # More replicas no longer help: the load is light, or the last step gained < 3%.
        light = (requests_per_s / r) * c.e2e0_s < 0.05
        if not sim.overloaded and (light or worst > 0.97 * last_worst.get(cid, math.inf)):
            continue
        last_worst[cid] = worst if not sim.overloaded else math.inf
        heapq.heappush(heap, node(c, next_r(r)))
    simulated = len(touched)
    found.sort(key=lambda e: (e[0], e[1], e[2]))
    plans: list[SloServePlan] = []
    seen: set[tuple[str, int, str, bool, int]] = set()
    for _cost, _ndev, _q, c, r in found:
        key = (c.dev.id, c.tp, c.wp, c.chunked, c.budget)
        if key in seen:
            continue
        seen.add(key)
        plans.append(
            _plan(c, r, sim_at, requests_per_s, output_len, ttft_p90_s, itl_p90_s, kv_precision, max_num_seqs)
        )
        if len(plans) >= top:
            break

    closest: SloServePlan | None = None
    failing: list[str] = []
    infeasible: list[str] = []
    if not plans:
        # The closest candidate: smallest max(p90 / target) over what was simulated, else over the bounds.
        scored: list[tuple[float, _Cand, int]] = []
        for c in cands:
            for r, s in {**c.screens, **c.sims}.items():
                rat = _ratios(s, ttft_p90_s, itl_p90_s)
                scored.append((max(rat.values()) if not s.overloaded else math.inf, c, r))
        if not any(math.isfinite(x[0]) for x in scored):
            scored = []
            for ratio, c, _b in pruned:
                r = max(c.r_lb, math.ceil(requests_per_s * c.e2e0_s / 0.05))
                scored.append((ratio, c, min(r, max_replicas)))
        if scored:
            scored.sort(key=lambda x: (x[0], x[1].tp * x[1].min_price * x[2]))
            _ratio, c, r = scored[0]
            closest = _plan(
                c, r, sim_at, requests_per_s, output_len, ttft_p90_s, itl_p90_s, kv_precision, max_num_seqs
            )
            rat = _ratios(c.sims[r], ttft_p90_s, itl_p90_s)
            failing = [k for k, v in sorted(rat.items(), key=lambda kv: -kv[1]) if v > 1.0]
            if c.sims[r].overloaded:
                failing.append("throughput")
            parts = []
            sim = c.sims[r]
            if ttft_p90_s is not None:
                parts.append(f"TTFT p90 {sim.ttft_s['p90'] * 1e3:.0f} ms vs {ttft_p90_s * 1e3:g} ms")
            if itl_p90_s is not None:
                parts.append(f"ITL p90 {sim.itl_s['p90'] * 1e3:.1f} ms vs {itl_p90_s * 1e3:g} ms")
            infeasible.append(
                f"no configuration meets {' and '.join(_slo_text(k) for k in failing) or 'the targets'}: the closest "
                f"is {closest.label()} with {', '.join(parts)}"
            )
            lows = (
                {k: min(b.get(k, 0.0) for _x, _c, b in pruned) for k in ("ttft_p90", "itl_p90")}
                if pruned
                else {}
            )
            if pruned and not cands:
                for k, v in lows.items():
                    if v > 1.0:
                        infeasible.append(
                            f"even one request alone misses {_slo_text(k)} on every candidate (best bound "
                            f"{v:.2f}× the target)"
                        )
        else:
            infeasible.append(
                "nothing to plan on: "
                + (
                    "; ".join(
                        x
                        for x in (
                            f"no price for {', '.join(unpriced)}" if unpriced else "",
                            f"no engine row for {', '.join(no_engine)}" if no_engine else "",
                            f"the model does not fit on {', '.join(no_fit)}" if no_fit else "",
                        )
                        if x
                    )
                    or "no device"
                )
            )
    if unpriced:
        notes.append(f"no price for {', '.join(unpriced)}: left out")
    if no_engine:
        notes.append(f"no {engine or 'default'} engine row for {', '.join(no_engine)}: left out")
    assumptions: list[dict[str, Any]] = [
        {"name": "month", "value": S_PER_MONTH / S_PER_H, "source": "30-day billing month (hours)"},
        {
            "name": "batching",
            "value": "continuous",
            "source": "each replica simulated (estimate/serve_sim.py) at rps / replicas with "
            f"{sim_requests} Poisson requests, seed {seed}; queueing included",
        },
        {
            "name": "load_balancing",
            "value": "even",
            "source": "arrivals split evenly: each replica sees rps / r",
        },
        {
            "name": "engine_variants",
            "value": [list(v) for v in engine_variants],
            "source": "(chunked prefill, token budget) tried per replica",
        },
        {
            "name": "kv_precision",
            "value": kv_precision,
            "source": "default" if kv_precision == "bf16" else "user",
        },
        {
            "name": "quality",
            "value": "not modelled",
            "source": "fp8/int8/int4 weights are flagged with a quality risk",
        },
    ]
    if prefix_share > 0.0:
        assumptions.append(prefix_cache_assumption(prefix_share, share_prefix_blocks).to_dict())
    return SloServePlanResult(
        status="ok" if plans else "infeasible",
        model=model.name,
        requests_per_s=requests_per_s,
        prompt_len=prompt_len,
        output_len=output_len,
        ttft_p90_s=ttft_p90_s,
        itl_p90_s=itl_p90_s,
        plans=plans,
        closest=closest,
        failing_slo=failing,
        infeasible=infeasible,
        notes=notes,
        assumptions=assumptions,
        price_snapshot_date=cat.price_snapshot_date,
        candidates=n_total,
        pruned_by_closed_form=len(pruned),
        candidates_simulated=simulated,
        simulations=n_sims,
        elapsed_s=time.perf_counter() - t0,
        prefix_share=prefix_share,
    )


def _slo_text(key: str) -> str:
    return {
        "ttft_p90": "the TTFT p90 target",
        "itl_p90": "the ITL p90 target",
        "throughput": "the request rate",
    }.get(key, key)


def _plan(
    c: _Cand,
    r: int,
    sim_at: Any,
    rps: float,
    output_len: int,
    ttft_t: float | None,
    itl_t: float | None,
    kv_precision: str,
    max_num_seqs: int,
) -> SloServePlan:
    from mlcost.plan.serve import QUALITY_RISK

    sim = sim_at(c, r)
    meets = _meets(sim, ttft_t, itl_t)
    rat = _ratios(sim, ttft_t, itl_t)
    binding: str | None
    if not meets:
        binding = None
        detail = "targets not met"
    elif r > 1:
        prev = sim_at(c, r - 1)
        prat = _ratios(prev, ttft_t, itl_t)
        if prev.overloaded:
            binding = "throughput"
            detail = f"{r - 1} replicas would be overloaded ({prev.throughput_rps:.3g} of {rps / (r - 1):.3g} req/s each)"
        else:
            binding = max(prat, key=lambda k: prat[k])
            detail = f"with {r - 1} replicas {_slo_text(binding)} is missed ({prat[binding]:.2f}× the target)"
    else:
        binding = max(rat, key=lambda k: rat[k])
        detail = f"one replica meets every target; the tightest is {_slo_text(binding)} at {rat[binding]:.2f}× the target"
    pr = c.price_for(r * c.tp)
    price, row = pr if pr is not None else (c.min_price, int(np.argmin(c.rows.usd_per_device_h)))
    cost_h = r * c.tp * price
    return SloServePlan(
        device=c.dev.id,
        tp=c.tp,
        weight_precision=c.wp,
        kv_precision=kv_precision,
        engine=c.eng.engine,
        chunked_prefill=c.chunked,
        max_num_batched_tokens=c.budget,
        max_num_seqs=max_num_seqs,
        replicas=r,
        devices=r * c.tp,
        provider=c.rows.provider[row],
        region=c.rows.region[row],
        pricing=c.rows.pricing[row],
        price_usd_per_device_h=price,
        cost_per_hour_usd=cost_h,
        monthly_cost_usd=cost_h * S_PER_MONTH / S_PER_H,
        cost_per_million_output_tokens_usd=cost_h / (rps * output_len * S_PER_H) * 1e6,
        requests_per_s_per_replica=rps / r,
        simulated=_sim_summary(sim),
        binding_slo=binding,
        binding_detail=detail,
        meets=meets,
        quality_risk=QUALITY_RISK.get(c.wp, "unknown"),
    )
