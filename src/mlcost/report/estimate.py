"""Views of training and serving estimates, from their ``to_dict()`` (docs/json.md: estimate train/serve)."""

from __future__ import annotations

from typing import Any

from mlcost.report import format as f
from mlcost.report.common import assumptions_table, key_assumptions
from mlcost.report.view import Table, View

#: The assumptions shown in the default view of ``estimate train`` (the rest under --explain).
TRAIN_KEY_ASSUMPTIONS = (
    "tokens",
    "gpus",
    "price_usd_per_device_h",
    "efficiency_profile",
    "goodput",
    "carbon_kg_per_kwh",
)
SERVE_KEY_ASSUMPTIONS = ("price_usd_per_device_h", "efficiency_profile", "engine", "batching", "utilisation")

#: Labels of the step-time parts (TrainEstimate.time_breakdown_s keys), also used by the HTML report.
TIME_PARTS = {
    "matmul_s": "matmul",
    "attention_s": "attention",
    "memory_bound_s": "memory-bound",
    "tp_comm_s": "TP communication",
    "pp_comm_s": "PP communication",
    "dp_comm_s": "DP communication",
    "bubble_s": "pipeline bubble",
    "optimizer_s": "optimizer",
    "page_faults_s": "page faults (fresh ≥ 32 MiB allocations)",
}
MEMORY_PARTS = ("weights", "gradients", "optimizer", "activations", "kv_cache", "other")


def _band(rng: dict[str, Any], key: str, fmt: Any) -> str:
    if key not in rng or rng[key] is None:
        return ""
    lo, hi = rng[key]
    return f"{fmt(lo)} – {fmt(hi)}"


def train_view(d: dict[str, Any]) -> View:
    """``mlcost estimate train``: the answer, the memory fit and the key assumptions; --explain adds the
    per-step table with the time breakdown, the memory table, and every assumption."""
    v = View()
    job, cl = d["config"]["job"], d["config"]["cluster"]
    params = f.count(d["params"], "params")
    if d["active_params"] != d["params"]:
        params += f", {f.count(d['active_params'])} active"
    vs = f" (v={job['virtual_stages']})" if job.get("virtual_stages", 1) > 1 else ""
    v.line(
        f"{d['model']} ({params}) on {d['devices']} × {cl['device']} — "
        f"TP {d['tp']} · PP {d['pp']} · DP {d['dp']}{vs}",
        "bold",
    )
    v.line(
        f"job: {f.tokens(job['tokens'])}, seq {job['seq_len']}, global batch {job['global_batch']}, "
        f"micro-batch {job['micro_batch']} (grad-accum {f.number(d['grad_accum_steps'])}), {job['precision']}, "
        f"{job['optimizer']}, ZeRO-{job['zero']}, recompute {job['recompute']}, "
        f"flash-attention {'on' if job['flash_attention'] else 'off'}"
        + (", sequence-parallel" if job.get("sequence_parallel") else "")
    )
    band = d["error_band"]
    rng = band
    t = v.table(
        Table(
            f"Whole job (±{band['relative']:.0%})",
            ["metric", "estimate", "range"],
            right=("estimate", "range"),
        )
    )
    t.add("wall time", f.duration(d["total_time_s"]), _band(rng, "total_time_s", f.duration))
    t.add(
        "cost",
        f.money(d["cost_usd"]) if d["cost_usd"] is not None else "n/a (no price)",
        _band(rng, "cost_usd", f.money),
    )
    t.add("energy", f.energy_kwh(d["energy_kwh"]), _band(rng, "energy_kwh", f.energy_kwh))
    t.add("CO2e", f.co2_kg(d["co2_kg"]), _band(rng, "co2_kg", f.co2_kg))
    t.add(
        "device-hours",
        f.number(round(d["device_hours"])),
        _band(rng, "device_hours", lambda x: f.number(round(x))),
    )
    t.add("step time", f.duration(d["step_time_s"]), _band(rng, "step_time_s", f.duration))
    t.add("throughput", f.rate(d["tokens_per_s"]), "")
    t.add("MFU", f.pct(d["mfu"]), "")
    mem = d["memory_per_device_bytes"]
    if d["fits"]:
        v.line(
            f"fits: {f.bytes_(mem['total'])} of {f.bytes_(mem['capacity'])} per device "
            f"({mem['total'] / mem['capacity']:.0%})",
            "green",
        )
    else:
        v.line(
            f"does not fit: needs {f.bytes_(mem['total'])} of {f.bytes_(mem['capacity'])} per device. Would fit:",
            "red",
        )
        for s in d["fit_suggestions"]:
            v.line(f"  • {s}")
    key_assumptions(v, d["assumptions"], TRAIN_KEY_ASSUMPTIONS)

    s = v.table(Table("Per step", ["metric", "value"], right=("value",), explain=True))
    s.add("step time", f.duration(d["step_time_s"]))
    s.add("tokens/s", f.rate(d["tokens_per_s"]))
    s.add("model FLOPs / step", f.si(d["model_flops_per_step"], "FLOP"))
    s.add("hardware FLOPs / step", f.si(d["hardware_flops_per_step"], "FLOP"))
    s.add("TFLOP/s per device", f.number(d["tflops_per_device"]))
    s.add("MFU / HFU", f"{f.pct(d['mfu'])} / {f.pct(d['hfu'])}")
    s.add("steps", f.number(round(d["steps"])))
    for k, val in d["time_breakdown_s"].items():
        if val > 0:
            s.add(f"  time: {TIME_PARTS.get(k, k.removesuffix('_s').replace('_', ' '))}", f.duration(val))
    m = v.table(Table("Memory per device", ["part", "GiB"], right=("GiB",), explain=True))
    for name in ("weights", "gradients", "optimizer", "activations", "other", "total", "capacity"):
        if name == "total" and mem.get("not_concurrent"):  # the parts that are never resident together
            m.add(
                "not resident at once (activations freed as gradients grow)",
                f"−{f.bytes_in(mem['not_concurrent'])}",
            )
        if name in mem:
            m.add("device capacity" if name == "capacity" else name, f.bytes_in(mem[name]))
    assumptions_table(v, d["assumptions"])
    return v


def serve_view(d: dict[str, Any]) -> View:
    """``mlcost estimate serve``: latency, throughput, memory and $ per million tokens (the simulator's answer
    goes to :func:`serve_sim_view`)."""
    if d.get("model_kind") == "continuous-batching-simulation":
        return serve_sim_view(d)
    v = View()
    job, cl = d["config"]["job"], d["config"]["cluster"]
    v.line(
        f"{d['model']} ({f.count(d['params'], 'params')}) on {d['devices']} × {cl['device']} per replica — "
        f"batch {job['batch']}, prompt {job['prompt_len']}, output {job['output_len']}, "
        f"weights {job['weight_precision']}, KV cache {job['kv_precision']}",
        "bold",
    )
    if d.get("model_kind"):
        eng = d.get("engine") or {}
        v.line(
            "model: static closed form (the batch prefilled together, decoded in lock-step; no queueing — "
            f"--rps or --concurrency simulates continuous batching), engine {eng.get('engine', '-')}"
        )
    pc = next((a for a in d.get("assumptions", []) if a.get("name") == "prefix_cache"), None)
    if pc is not None:
        v.line(f"prefix cache: {pc['value']} blocks — {pc['source']}")
    band = d["error_band"]
    t = v.table(
        Table(
            f"Serving (±{band['relative']:.0%})", ["metric", "estimate", "range"], right=("estimate", "range")
        )
    )
    t.add("time to first token", f.duration(d["ttft_s"]), _band(band, "ttft_s", f.duration))
    t.add(
        "time per output token",
        f.duration(d["time_per_output_token_s"]),
        _band(band, "time_per_output_token_s", f.duration),
    )
    t.add("request latency", f.duration(d["request_latency_s"]), "")
    t.add("output tokens/s (replica)", f.rate(d["tokens_per_s"]), _band(band, "tokens_per_s", f.rate))
    t.add(
        "$ per 1M output tokens",
        f.money(d["cost_per_million_output_tokens_usd"]),
        _band(band, "cost_per_million_output_tokens_usd", f.money),
    )
    t.add("cost per hour (replica)", f.money(d["cost_per_hour_usd"]), "")
    mem = d["memory_per_device_bytes"]
    t.add("memory / device", f"{f.bytes_(mem['total'])} of {f.bytes_(mem['capacity'])}", "")
    t.add("fits", "yes" if d["fits"] else "no", f"largest batch {d['max_batch']}")
    key_assumptions(v, d["assumptions"], SERVE_KEY_ASSUMPTIONS)
    x = v.table(Table("Detail", ["metric", "value"], right=("value",), explain=True))
    x.add("decode bound by", d["bound"])
    x.add("weights / device", f.bytes_(d["weights_bytes"]))
    x.add("KV cache / device", f.bytes_(d["kv_cache_bytes"]))
    x.add("largest batch that fits", str(d["max_batch"]))
    x.add("kWh per 1M output tokens", f.energy_kwh(d["energy_kwh_per_million_output_tokens"]))
    x.add("CO2e per 1M output tokens", f.co2_kg(d["co2_kg_per_million_output_tokens"]))
    assumptions_table(v, d["assumptions"])
    return v


def _pcts(d: dict[str, Any], fmt: Any) -> list[str]:
    return [fmt(d["p50"]), fmt(d["p90"]), fmt(d["p99"]), fmt(d["mean"])]


def serve_sim_view(d: dict[str, Any]) -> View:
    """``mlcost estimate serve --batching continuous``: the simulator's distributions."""
    v = View()
    job, cl, sim = d["config"]["job"], d["config"]["cluster"], d["simulation"]
    wl, ec = sim["workload"], sim["engine_config"]
    if wl.get("arrivals") == "poisson":
        load = f"Poisson {wl['rate_rps']:g} req/s"
    elif wl.get("arrivals") == "closed-loop":
        load = f"{wl['concurrency']} concurrent clients"
    else:
        load = f"arrivals from {wl.get('file')}"
    lengths = (
        f"prompt {wl['prompt_tokens']} ({wl['prompt_distribution']}), output {wl['output_tokens']} "
        f"({wl['output_distribution']})"
        if "prompt_tokens" in wl
        else f"lengths from {wl.get('lengths_file') or wl.get('file')}"
    )
    if wl.get("prefix_share"):
        blocks = next(
            (a["value"] for a in d.get("assumptions", []) if a.get("name") == "prefix_cache"), "shared"
        )
        lengths += f", {wl['prefix_share']:.0%} prefix-cache hit (blocks {blocks})"
    v.line(
        f"{d['model']} on {d['devices']} × {cl['device']} per replica, engine {job['engine']} — {load}, "
        f"{sim['requests']} requests, {lengths}; weights {job['weight_precision']}, KV {job['kv_precision']}",
        "bold",
    )
    v.line(
        f"model: continuous-batching simulation (max {ec['max_num_seqs']} seqs, "
        f"{ec['max_num_batched_tokens'] or 'default'} batched tokens, chunked prefill "
        f"{'on' if ec['chunked_prefill'] else 'off'}, {sim['kv_blocks_total']:,} KV blocks of {ec['kv_block_size']})"
    )
    t = v.table(
        Table("Latency", ["metric", "p50", "p90", "p99", "mean"], right=("p50", "p90", "p99", "mean"))
    )
    t.add("time to first token", *_pcts(sim["ttft_s"], f.duration))
    t.add("inter-token latency", *_pcts(sim["itl_s"], f.duration))
    t.add("time per output token (per request)", *_pcts(sim["tpot_s"], f.duration))
    t.add("end-to-end latency", *_pcts(sim["e2e_s"], f.duration))
    t.add("queueing delay", *_pcts(sim["queue_s"], f.duration))
    u = v.table(Table("Throughput and cost", ["metric", "value"], right=("value",)))
    offered = sim["offered_rps"]
    u.add(
        "requests/s (replica)",
        f"{sim['throughput_rps']:.3g}" + (f" of {offered:.3g} offered" if offered is not None else ""),
    )
    u.add("output tokens/s (replica)", f.rate(sim["output_tokens_per_s"]))
    u.add("$ per 1M output tokens", f.money(d["cost_per_million_output_tokens_usd"]))
    u.add("cost per hour (replica)", f.money(d["cost_per_hour_usd"]))
    u.add("KV cache in use (mean / max)", f"{sim['kv_occupancy_mean']:.0%} / {sim['kv_occupancy_max']:.0%}")
    u.add("preemptions", str(sim["preemptions"]))
    u.add("running sequences (mean)", f"{sim['mean_running']:.1f}")
    u.add("longest queue", str(sim["max_waiting"]))
    if sim["overloaded"]:
        v.line(
            f"overloaded: the replica completes {sim['throughput_rps']:.3g} req/s of the {offered:.3g} offered; "
            "the queue grows for as long as the load lasts",
            "bold",
        )
    key_assumptions(v, d["assumptions"], SERVE_KEY_ASSUMPTIONS)
    x = v.table(Table("Detail", ["metric", "value"], right=("value",), explain=True))
    x.add("iterations simulated", f"{sim['iterations']:,} ({sim['event_steps']:,} visited)")
    x.add("simulator wall time", f.duration(sim["wall_s"]))
    x.add("weights / device", f.bytes_(d["weights_bytes"]))
    x.add("KV cache / device (max)", f.bytes_(d["kv_cache_bytes"]))
    x.add("kWh per 1M output tokens", f.energy_kwh(d["energy_kwh_per_million_output_tokens"]))
    x.add("CO2e per 1M output tokens", f.co2_kg(d["co2_kg_per_million_output_tokens"]))
    assumptions_table(v, d["assumptions"])
    return v
