"""Views of ledger runs: ``mlcost runs`` (list), ``runs show``, ``runs compare``, and one measured run
(``mlcost measure``). Input: ``RunRecord.to_dict()`` plus ``display_status``."""

from __future__ import annotations

import json
from typing import Any

from mlcost.report import format as f
from mlcost.report.view import Table, View

MEASURED_ENERGY = ("nvml", "rapl")


def energy(metrics: dict[str, Any]) -> str:
    """Energy of a run; '~' marks an estimate (power × time), not a measurement."""
    if not isinstance(metrics.get("energy_j"), (int, float)):
        return "-"
    text = f.energy_j(metrics["energy_j"])
    return text if metrics.get("energy_source") in MEASURED_ENERGY else f"~{text}"


def list_view(d: dict[str, Any]) -> View:
    """``{"ledger": url, "count": n, "runs": [record dict + display_status]}``."""
    v = View()
    if not d["runs"]:
        v.line(f"no runs in {d['ledger']}")
        return v
    t = v.table(
        Table(
            f"runs in {d['ledger']}",
            ["id", "started", "model", "strategy", "status", "step", "tokens/s", "MFU", "peak mem", "energy"],
            right=("step", "tokens/s", "MFU", "peak mem", "energy"),
            optional=("started", "MFU", "energy"),
        )
    )
    x = v.table(
        Table(
            "Run detail", ["id", "kind", "device", "ws", "$", "CO2e"], right=("ws", "$", "CO2e"), explain=True
        )
    )
    for r in d["runs"]:
        m = r["metrics"]
        t.add(
            r["run_id"][:8],
            r["started_at"][5:16].replace("T", " "),
            r["model"],
            r["strategy"] or "-",
            r.get("display_status", r["status"]),
            f.duration(m.get("step_time_s")),
            f.rate(m.get("tokens_per_s"), ""),
            f.pct(m.get("mfu")),
            f.bytes_(m.get("peak_memory_bytes")),
            energy(m),
        )
        x.add(
            r["run_id"][:8],
            r["kind"],
            r["device"],
            r["world_size"],
            f.money(m.get("cost_usd")),
            f.co2_kg(m.get("co2_kg")),
        )
    if any(
        isinstance(r["metrics"].get("energy_j"), (int, float))
        and r["metrics"].get("energy_source") not in MEASURED_ENERGY
        for r in d["runs"]
    ):
        v.line("~ energy estimated (power × time), not measured")
    if any(r.get("display_status") == "interrupted?" for r in d["runs"]):
        v.line("interrupted?: still 'running' but its process is gone (mlcost runs mark-stale records it)")
    return v


def show_view(d: dict[str, Any]) -> View:
    """``{"ledger": url, "run": record dict + display_status}``: metrics (with predictions), config,
    provenance."""
    r = d["run"]
    v = View()
    t = v.table(Table(f"run {r['run_id']}", ["field", "value"], wrap=("value",)))
    for key in (
        "kind",
        "model",
        "strategy",
        "device",
        "world_size",
        "started_at",
        "finished_at",
        "host",
        "pid",
    ):
        t.add(key, str(r.get(key)))
    t.add("status", r.get("display_status", r["status"]))
    if r.get("error"):
        t.add("error", r["error"])
    for key, value in r["metrics"].items():
        shown = f.by_unit(key, value)
        pred = r["predicted"].get(key)
        if isinstance(pred, (int, float)) and not isinstance(pred, bool):
            shown += f"   (predicted {f.by_unit(key, pred)})"
        t.add(f"metrics.{key}", shown)
    c = v.table(Table("config and provenance", ["field", "value"], wrap=("value",), explain=True))
    for key, value in r["config"].items():
        c.add(f"config.{key}", json.dumps(value))
    prov = r.get("provenance") or {}
    if prov:
        cpu = prov.get("cpu") or {}
        git = prov.get("git") or {}
        c.add("provenance", f"{prov.get('hostname')}, {cpu.get('model')}, python {prov.get('python')}")
        c.add("versions", ", ".join(f"{k} {val}" for k, val in (prov.get("versions") or {}).items() if val))
        if git:
            c.add("git", f"{git.get('commit', '')[:12]}{' (dirty)' if git.get('dirty') else ''}")
    return v


def compare_view(d: dict[str, Any]) -> View:
    """``{"runs": ids, "metrics": {name: {"values", "ratios"}}, "records": [record dicts]}``."""
    v = View()
    recs = d["records"]
    cols = [""] + [f"{r['run_id'][:8]} {r['strategy'] or r['model']}" for r in recs]
    t = v.table(Table("ratios vs the first run", cols, right=tuple(cols[1:])))
    for key in ("model", "strategy", "device"):
        t.add(key, *[str(r[key]) for r in recs])
    t.add("status", *[r.get("display_status", r["status"]) for r in recs])
    for name, row in d["metrics"].items():
        cells = []
        for i, (val, ratio) in enumerate(zip(row["values"], row["ratios"], strict=True)):
            text = energy(recs[i]["metrics"]) if name == "energy_j" else f.by_unit(name, val)
            if i > 0 and ratio is not None:
                text += f" ({ratio:.2f}×)"
            cells.append(text)
        t.add(name, *cells)
    return v


def measured_view(d: dict[str, Any]) -> View:
    """One measured run (``mlcost measure train|serve``): ``run_summary(record)`` plus ``ledger`` and the
    source notes (``mfu_peak_source``, ``energy_detail``, ``cost_source``, ``co2_source``)."""
    v = View()
    title = f"{d['kind']} {d['model']} [{d['strategy']}] on {d['device']}"
    if d.get("world_size", 1) > 1:
        title += f" × {d['world_size']}"
    p = d.get("predicted") or {}
    t = v.table(Table(title, ["metric", "measured", "predicted"], right=("measured", "predicted")))
    if d["kind"] == "serve":
        t.add("time to first token", f.duration(d.get("ttft_s")), f.duration(p.get("ttft_s")))
        tpot = p.get("time_per_output_token_s")
        t.add("time per output token", f.duration(d.get("time_per_output_token_s")), f.duration(tpot))
        t.add("output tokens/s", f.rate(d.get("tokens_per_s")), f.rate(p.get("tokens_per_s")))
    else:
        t.add("step time (median)", f.duration(d.get("step_time_s")), f.duration(p.get("step_time_s")))
        t.add("step time (p90)", f.duration(d.get("step_time_p90_s")), "-")
        t.add("tokens/s (total)", f.rate(d.get("tokens_per_s")), f.rate(p.get("tokens_per_s")))
        t.add("tokens/s per device", f.rate(d.get("tokens_per_s_per_device")), "-")
        t.add("achieved FLOP/s", f.si(d.get("achieved_flops_per_s"), "FLOP/s"), "-")
        t.add("MFU", f.pct(d.get("mfu")), f.pct(p.get("mfu")))
        if d.get("compile_time_s") is not None:
            t.add("compile time (excluded)", f.duration(d.get("compile_time_s")), "-")
    t.add("peak memory", f.bytes_(d.get("peak_memory_bytes")), f.bytes_(p.get("peak_memory_bytes")))
    t.add("energy", energy(d), "-")
    t.add("$ per million tokens", f.money(d.get("usd_per_million_tokens")), "-")
    t.add("CO2e", f.co2_kg(d.get("co2_kg")), "-")
    v.line(f"status: {d['status']}" + (f" ({d['error']})" if d.get("error") else ""))
    for warning in d.get("warnings") or []:
        v.line(f"  warning: {warning}")
    cv, spread = d.get("step_time_cv"), d.get("step_time_p90_over_p50")
    if isinstance(cv, (int, float)) and isinstance(spread, (int, float)):
        v.line(f"  step-time spread: p90/median {spread:.2f}, CV {cv:.2f}", explain=True)
    if d.get("mfu_unavailable_reason"):
        v.line(f"  MFU unavailable: {d['mfu_unavailable_reason']}")
    for key, label in (
        ("mfu_peak_source", "MFU peak"),
        ("energy_detail", "energy"),
        ("cost_source", "cost"),
        ("co2_source", "CO2"),
    ):
        if d.get(key):
            v.line(f"  {label}: {d[key]}", explain=True)
    v.line(f"  run {d['run_id']}" + (f" in {d['ledger']}" if d.get("ledger") else ""))
    return v


def strategies_view(d: dict[str, Any]) -> View:
    """``mlcost measure --compare``: ``{"runs": [run_summary + verdict], "baseline": id}``."""
    v = View()
    t = v.table(
        Table(
            "strategies compared (same model, data and machine)",
            ["strategy", "time/step", "tokens/s", "peak mem", "energy", "$/M tokens", "speedup", "verdict"],
            right=("time/step", "tokens/s", "peak mem", "energy", "$/M tokens", "speedup"),
            wrap=("verdict",),
        )
    )
    for r in d["runs"]:
        verdict = r["verdict"]
        speed = verdict.get("speedup")
        t.add(
            r["strategy"],
            f.duration(r.get("step_time_s")),
            f.rate(r.get("tokens_per_s"), ""),
            f.bytes_(r.get("peak_memory_bytes")),
            energy(r),
            f.money(r.get("usd_per_million_tokens")),
            _speedup(speed, r.get("speedup_interval")),
            f"{verdict['label']}: {verdict['reason']}" if r["strategy"] != "baseline" else "reference",
        )
    for r in d["runs"]:
        for warning in r.get("warnings") or []:
            v.line(f"  warning ({r['strategy']}): {warning}")
    return v


def _speedup(speed: Any, interval: dict[str, Any] | None) -> str:
    """``1.20×`` or, with the 95% interval of the speed-up, ``1.20× [1.05–1.38]``."""
    if not isinstance(speed, (int, float)):
        return "-"
    if not interval:
        return f"{speed:.2f}×"
    return f"{speed:.2f}× [{interval['low']:.2f}–{interval['high']:.2f}]"
