"""Terminal rendering of training and serving estimates."""

from __future__ import annotations

from typing import Any

from mlcost.estimate.result import ServeEstimate, TrainEstimate
from mlcost.units import format_bytes, format_duration, format_si


def _money(x: float | None) -> str:
    return "n/a (no price)" if x is None else f"${x:,.2f}" if x < 1e4 else f"${x:,.0f}"


def _band(lo: float, hi: float, fmt: Any) -> str:
    return f"{fmt(lo)} – {fmt(hi)}"


def render_train(est: TrainEstimate, console: Any) -> None:
    from rich.table import Table

    job = est.config["job"]
    cl = est.config["cluster"]
    console.print(
        f"[bold]{est.model}[/bold] ({format_si(est.params)} params"
        + (f", {format_si(est.active_params)} active" if est.active_params != est.params else "")
        + f") on {est.devices} × {cl['device']} — TP {est.tp} · PP {est.pp} · DP {est.dp}"
        + (f" (v={job['virtual_stages']})" if job["virtual_stages"] > 1 else "")
    )
    console.print(
        f"job: {format_si(job['tokens'])} tokens, seq {job['seq_len']}, global batch {job['global_batch']}, "
        f"micro-batch {job['micro_batch']} (grad-accum {est.grad_accum_steps:g}), {job['precision']}, "
        f"{job['optimizer']}, ZeRO-{job['zero']}, recompute {job['recompute']}, "
        f"flash-attention {'on' if job['flash_attention'] else 'off'}"
        + (", sequence-parallel" if job["sequence_parallel"] else "")
    )
    t = Table(show_header=True, header_style="bold", title="Per step")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("step time", format_duration(est.step_time_s))
    t.add_row("tokens/s", f"{est.tokens_per_s:,.0f}")
    t.add_row("model FLOPs / step", format_si(est.model_flops_per_step, "FLOP"))
    t.add_row("hardware FLOPs / step", format_si(est.hardware_flops_per_step, "FLOP"))
    t.add_row("TFLOP/s per device", f"{est.tflops_per_device:.1f}")
    t.add_row("MFU / HFU", f"{est.mfu:.1%} / {est.hfu:.1%}")
    for k, v in est.time_breakdown_s.items():
        if v > 0:
            t.add_row(f"  time: {k.removesuffix('_s').replace('_', ' ')}", format_duration(v))
    console.print(t)

    m = Table(show_header=True, header_style="bold", title="Memory per device")
    m.add_column("part")
    m.add_column("bytes", justify="right")
    mem = est.memory
    for name, val in (
        ("weights", mem.weights),
        ("gradients", mem.gradients),
        ("optimizer", mem.optimizer),
        ("activations", mem.activations),
        ("other", mem.other),
        ("total", mem.total),
        ("device capacity", mem.capacity),
    ):
        m.add_row(name, format_bytes(val))
    console.print(m)
    if est.fits:
        console.print(f"[green]fits[/green]: {mem.total / mem.capacity:.0%} of device memory")
    else:
        console.print(
            f"[red]does not fit[/red]: needs {format_bytes(mem.total)} of {format_bytes(mem.capacity)}. Would fit:"
        )
        for s in est.fit_suggestions:
            console.print(f"  • {s}")

    tot = Table(show_header=True, header_style="bold", title=f"Whole job (±{est.error_band.relative:.0%})")
    tot.add_column("metric")
    tot.add_column("estimate", justify="right")
    tot.add_column("range", justify="right")
    rng = est.error_band.ranges
    tot.add_row("steps", f"{est.steps:,.0f}", "")
    tot.add_row("wall time", format_duration(est.total_time_s), _band(*rng["total_time_s"], format_duration))
    tot.add_row("device-hours", f"{est.device_hours:,.0f}", "")
    tot.add_row("energy", f"{est.energy_kwh:,.1f} kWh", _band(*rng["energy_kwh"], lambda x: f"{x:,.0f}"))
    tot.add_row("cost", _money(est.cost_usd), _band(*rng["cost_usd"], _money) if "cost_usd" in rng else "")
    tot.add_row("CO2e", f"{est.co2_kg:,.1f} kg", _band(*rng["co2_kg"], lambda x: f"{x:,.0f}"))
    console.print(tot)
    render_assumptions(est.assumptions, console)


def render_serve(est: ServeEstimate, console: Any) -> None:
    from rich.table import Table

    job = est.config["job"]
    cl = est.config["cluster"]
    console.print(
        f"[bold]{est.model}[/bold] ({format_si(est.params)} params) on {est.devices} × {cl['device']} per replica — "
        f"batch {job['batch']}, prompt {job['prompt_len']}, output {job['output_len']}, "
        f"weights {job['weight_precision']}, KV cache {job['kv_precision']}"
    )
    t = Table(show_header=True, header_style="bold", title=f"Serving (±{est.error_band.relative:.0%})")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("time to first token", format_duration(est.ttft_s))
    t.add_row("time per output token", format_duration(est.time_per_output_token_s))
    t.add_row("request latency", format_duration(est.request_latency_s))
    t.add_row("output tokens/s (replica)", f"{est.tokens_per_s:,.0f}")
    t.add_row("decode bound by", est.bound)
    t.add_row("weights / device", format_bytes(est.weights_bytes))
    t.add_row("KV cache / device", format_bytes(est.kv_cache_bytes))
    t.add_row(
        "memory total / capacity",
        f"{format_bytes(est.memory['total'])} / {format_bytes(est.memory['capacity'])}",
    )
    t.add_row("fits", "yes" if est.fits else "[red]no[/red]")
    t.add_row("largest batch that fits", str(est.max_batch))
    t.add_row("cost per hour (replica)", _money(est.cost_per_hour_usd))
    t.add_row("$ per 1M output tokens", _money(est.cost_per_million_output_tokens_usd))
    t.add_row("kWh per 1M output tokens", f"{est.energy_kwh_per_million_output_tokens:.3f}")
    t.add_row("kg CO2e per 1M output tokens", f"{est.co2_kg_per_million_output_tokens:.3f}")
    console.print(t)
    render_assumptions(est.assumptions, console)


def render_assumptions(assumptions: Any, console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    a = Table(show_header=True, header_style="bold", title="Assumptions", show_lines=False)
    a.add_column("what")
    a.add_column("value", justify="right")
    a.add_column("source", overflow="fold")
    for item in assumptions:
        val = item.value
        val_s = f"{val:.4g}" if isinstance(val, float) else str(val)
        a.add_row(escape(item.name), escape(val_s), escape(item.source))
    console.print(a)
