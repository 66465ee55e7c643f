"""View of ``mlcost env`` (the dict of mlcost.env.collect_env)."""

from __future__ import annotations

from typing import Any

from mlcost.report import format as f
from mlcost.report.view import Table, View


def view(env: dict[str, Any]) -> View:
    v = View()
    t = v.table(Table("", ["what", "value"], wrap=("value",)))
    cpu = env["cpu"]
    have = [k for k, on in cpu["flags"].items() if on]
    lacking = [k for k, on in cpu["flags"].items() if not on]
    t.add("CPU", str(cpu["model"]))
    t.add("  ISA", f"has: {' '.join(have) or '-'}; lacks: {' '.join(lacking) or '-'}")
    for note in cpu["implications"]:
        t.add("", f"→ {note}")
    cores = env["cores"]
    t.add(
        "cores",
        f"{cores.get('logical')} logical, {cores.get('physical')} physical, {cores.get('affinity')} usable",
    )
    t.add("memory", f.bytes_(env["memory_total_bytes"]))
    if env["gpus"]:
        for g in env["gpus"]:
            extra = f", driver {g['driver']}" if g.get("driver") else ""
            t.add(f"GPU {g['index']}", f"{g['name']}, {f.bytes_(g.get('memory_bytes'))}{extra}")
    else:
        t.add("GPUs", "none")
    tt = env["torch"]
    if tt["installed"]:
        cuda = f"CUDA {tt['cuda_version']}" if tt.get("cuda_available") else "no CUDA"
        t.add("torch", f"{tt['version']} ({cuda})" + (f"; {tt['note']}" if tt.get("note") else ""))
    else:
        t.add("torch", f"not installed ({tt.get('note')})")
    tr = env["transformers"]
    t.add("transformers", tr["version"] if tr["installed"] else "not installed")
    e = env["energy"]
    counters = [name for name in ("nvml", "rapl") if e.get(name)] or ["none"]
    t.add("energy", f"counters: {', '.join(counters)} → {e['note']}")
    led = env["ledger"]
    runs = (
        f", {led['runs']} runs"
        if led.get("runs") is not None
        else (", not created yet" if led.get("exists") is False else "")
    )
    t.add("ledger", f"{led['url']}{runs}" + (" (from MLCOST_LEDGER)" if led.get("from_env") else ""))
    cat = env["catalog"]
    if cat.get("available"):
        bits = [
            f"{k} {cat[k]}" for k in ("snapshot_date", "date", "version", "devices") if cat.get(k) is not None
        ]
        t.add("catalog", ", ".join(bits) or "available")
    else:
        t.add("catalog", f"unavailable ({cat.get('error')})")
    t.add("python", f"{env['python']} on {env['hostname']}")
    return v
