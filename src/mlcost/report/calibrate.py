"""Views of ``mlcost calibrate`` (its ``--json`` object, docs/calibrate.md) and ``calibrate --report``."""

from __future__ import annotations

from typing import Any

from mlcost.report import format as f
from mlcost.report.view import Table, View


def calibration_view(d: dict[str, Any]) -> View:
    """Microbenchmarks, the local device's peaks, the fitted profile and the fit's error."""
    from mlcost.calibrate.fit import PARAM_MEANING

    v = View()
    mb, prov = d["microbench"], d.get("provenance") or {}
    t = v.table(
        Table(
            f"Measured on {prov.get('host', '?')} ({prov.get('cpu_model') or '?'})",
            ["what", "measured"],
            right=("measured",),
            wrap=("measured",),
            explain=True,
        )
    )
    for dtype, rates in mb.get("matmul_flops_per_s", {}).items():
        t.add(f"matmul {dtype} (n×n)", ", ".join(f"{n}: {f.si(r, 'FLOP/s')}" for n, r in rates.items()))
    t.add("copy bandwidth (read+write)", f.si(mb.get("copy_bytes_per_s", 0.0), "B/s"))
    if mb.get("gemv_bytes_per_s"):
        gemv_mib = mb.get("gemv_weight_bytes", 0.0) / 2**20
        t.add(f"GEMV weight stream ({gemv_mib:.0f} MiB fp32)", f.si(mb["gemv_bytes_per_s"], "B/s"))
    stream = mb.get("weight_stream_bytes_per_s") or {}
    if stream:
        shown = [m for m in ("1", "2", "3", "4", "8", "16", "64", "256") if m in stream]
        t.add(
            "weight stream by GEMM rows",
            ", ".join(f"{m}: {f.si(stream[m], 'B/s')}" for m in shown),
        )
    for op, bw in mb.get("elementwise_bytes_per_s", {}).items():
        t.add(f"{op} throughput", f.si(bw, "B/s"))
    if mb.get("allreduce_bus_bytes_per_s"):
        for size, bw in mb["allreduce_bus_bytes_per_s"].items():
            t.add(f"all-reduce 2 procs, {int(size) // 1024} KiB", f.si(bw, "B/s") + " bus")
    else:
        t.add("all-reduce 2 procs", f"skipped: {mb.get('allreduce_error')}")
    dev = d["device"]
    peaks = ", ".join(f"{k} {f.si(val, 'FLOP/s')}" for k, val in (dev.get("peak_flops_per_s") or {}).items())
    v.line(f"device 'local': peak {peaks}; memory bandwidth {f.si(dev.get('mem_bw_bytes_per_s'), 'B/s')}")
    p = v.table(
        Table(
            "Fitted efficiency profile (device 'local')",
            ["parameter", "value", "meaning"],
            right=("value",),
            wrap=("meaning",),
        )
    )
    prof = d["profile"]
    for name, meaning in PARAM_MEANING.items():
        p.add(name, f.value(prof.get(name)), meaning)
    fit = d.get("fit")
    if fit is not None:
        mem = fit.get("memory_mean_abs_rel")
        v.line(
            f"fit on {len(fit['rows'])} runs: step-time MAPE {f.pct(fit['time_mape'])}"
            + (f", memory mean |error| {f.pct(mem)}" if mem is not None else ""),
            "bold",
        )
    else:
        v.line("no training runs fitted (--no-runs): efficiencies come from the microbenchmarks only")
    serve = d.get("serve")
    if serve:
        e, sf = serve["engine"], serve["fit"]
        v.line(
            f"serving engine hf (--serve) fitted on {sf['iterations']} iterations of a calibration load: "
            f"{f.duration(e['iteration_overhead_s'])} per iteration + {f.duration(e['per_seq_overhead_s'])} "
            f"per sequence, GEMM scale {e['matmul_eff_scale']:.2f}, decode bandwidth "
            f"{f.pct(e['decode_mem_bw_eff'])}; iteration time median |error| {f.pct(sf['median_abs_rel'])}; "
            f"capacity {serve['capacity_rps']:.2f} requests/s for {serve['workload']['prompt_tokens']}+"
            f"{serve['workload']['output_tokens']}-token requests",
            "bold",
        )
    v.line(
        f"saved to {d['saved_to']} — `--device local` now uses it; MFU on this CPU uses {d['peak_source']}"
    )
    return v


def ledger_report_view(rep: dict[str, Any]) -> View:
    """``mlcost calibrate --report``: predicted vs measured step time of the ledger's comparable runs."""
    v = View()
    t = v.table(
        Table(
            f"Ledger runs: predicted vs measured step time ({rep['profile']})",
            ["run id", "model", "config", "measured", "predicted", "error"],
            right=("measured", "predicted", "error"),
            wrap=("config",),
        )
    )
    for r in rep["runs"]:
        t.add(
            r["run_id"][:8],
            r["model"],
            r["config"],
            f.duration(r["measured_step_time_s"]),
            f.duration(r["predicted_step_time_s"]),
            f.pct(r["step_time_error_rel"], signed=True),
        )
    if rep["runs"]:
        v.line(f"MAPE over {len(rep['runs'])} runs: {f.pct(rep['step_time_mape'])}", "bold")
    else:
        v.line("no comparable runs (completed, single-process CPU baseline runs with a model shape)")
    return v
