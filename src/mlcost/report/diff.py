"""What changed between two results (estimates, plans, or ledger runs) and what it does to time, $, kWh,
CO2 and memory. :func:`diff` computes nothing new: it subtracts numbers the two results already carry.
The view renders the ``diff`` dict (``mlcost diff --json``, docs/json.md)."""

from __future__ import annotations

from typing import Any

from mlcost.errors import SpecError
from mlcost.report import format as f
from mlcost.report.view import Table, View

# (label, key path, formatter name) per kind of result
_TRAIN = (
    ("wall time", ("total_time_s",), "duration"),
    ("cost", ("cost_usd",), "money"),
    ("energy", ("energy_kwh",), "energy_kwh"),
    ("CO2e", ("co2_kg",), "co2_kg"),
    ("memory / device", ("memory_per_device_bytes", "total"), "bytes_"),
    ("step time", ("step_time_s",), "duration"),
    ("throughput", ("tokens_per_s",), "rate"),
)
_SERVE = (
    ("$ per 1M output tokens", ("cost_per_million_output_tokens_usd",), "money"),
    ("kWh per 1M output tokens", ("energy_kwh_per_million_output_tokens",), "energy_kwh"),
    ("CO2e per 1M output tokens", ("co2_kg_per_million_output_tokens",), "co2_kg"),
    ("memory / device", ("memory_per_device_bytes", "total"), "bytes_"),
    ("time to first token", ("ttft_s",), "duration"),
    ("time per output token", ("time_per_output_token_s",), "duration"),
)
_PLAN = (
    ("wall time", ("total_time_s",), "duration"),
    ("cost", ("cost_usd",), "money"),
    ("energy", ("energy_kwh",), "energy_kwh"),
    ("CO2e", ("co2_kg",), "co2_kg"),
    ("memory / device", ("memory_per_device_bytes",), "bytes_"),
    ("step time", ("step_time_s",), "duration"),
)
_RUN = (
    ("step time", ("metrics", "step_time_s"), "duration"),
    ("cost", ("metrics", "cost_usd"), "money"),
    ("energy", ("metrics", "energy_j"), "energy_j"),
    ("CO2e", ("metrics", "co2_kg"), "co2_kg"),
    ("peak memory", ("metrics", "peak_memory_bytes"), "bytes_"),
    ("throughput", ("metrics", "tokens_per_s"), "rate"),
)
_PLAN_INPUTS = (
    "device",
    "count",
    "tp",
    "pp",
    "dp",
    "zero",
    "micro_batch",
    "recompute",
    "precision",
    "provider",
    "region",
    "pricing",
    "seq_len",
    "global_batch",
)
COST_KEY = {
    "estimate-train": "cost",
    "estimate-serve": "$ per 1M output tokens",
    "plan-train": "cost",
    "run": "cost",
}


def kind_of(obj: Any) -> str:
    """'estimate-train', 'estimate-serve', 'plan-train', 'run', or '' for anything else."""
    if not isinstance(obj, dict):
        return ""
    k = obj.get("kind")
    if k in ("train", "serve") and "assumptions" in obj and "config" in obj:
        return f"estimate-{k}"
    if k == "plan-train" and obj.get("status") == "ok" and obj.get("plans"):
        return "plan-train"
    if "run_id" in obj and "metrics" in obj:
        return "run"
    return ""


def _get(obj: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)  # type: ignore[assignment]
    return obj


def _flat(prefix: str, obj: Any, out: dict[str, Any]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = obj


def _subject(obj: dict[str, Any], kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the record whose numbers are compared, its inputs flattened)."""
    inputs: dict[str, Any] = {}
    if kind.startswith("estimate"):
        _flat("", {"model": obj["model"], **obj["config"]["job"], **obj["config"]["cluster"]}, inputs)
        return obj, inputs
    if kind == "plan-train":
        p = obj["plans"][0]
        inputs = {"model": obj["model"], "tokens": obj["tokens"], "objective": obj["objective"]}
        _flat("constraints", obj.get("constraints") or {}, inputs)
        inputs.update({k: p.get(k) for k in _PLAN_INPUTS})
        return p, inputs
    _flat(
        "",
        {
            "model": obj["model"],
            "strategy": obj["strategy"],
            "device": obj["device"],
            "world_size": obj["world_size"],
            "config": obj.get("config") or {},
        },
        inputs,
    )
    return obj, inputs


def diff(
    a: dict[str, Any],
    b: dict[str, Any],
    *,
    a_name: str = "A",
    b_name: str = "B",
    fail_above_rel: float | None = None,
) -> dict[str, Any]:
    """The ``mlcost diff`` object: changed inputs, metric deltas and the cost verdict."""
    ka, kb = kind_of(a), kind_of(b)
    if not ka:
        raise SpecError(
            f"{a_name} is not an mlcost estimate, plan or run",
            hint="diff two outputs of mlcost estimate/plan --json, or two run ids",
        )
    if not kb:
        raise SpecError(
            f"{b_name} is not an mlcost estimate, plan or run",
            hint="diff two outputs of mlcost estimate/plan --json, or two run ids",
        )
    if ka != kb:
        raise SpecError(
            f"cannot diff a {ka} ({a_name}) with a {kb} ({b_name})",
            hint="diff two estimates, two plans or two runs",
        )
    sa, ia = _subject(a, ka)
    sb, ib = _subject(b, kb)
    inputs = [
        {"name": k, "a": ia.get(k), "b": ib.get(k)}
        for k in dict.fromkeys([*ia, *ib])
        if ia.get(k) != ib.get(k)
    ]
    spec = {"estimate-train": _TRAIN, "estimate-serve": _SERVE, "plan-train": _PLAN, "run": _RUN}[ka]
    metrics = []
    for label, path, fmt in spec:
        va, vb = _get(sa, path), _get(sb, path)
        if not isinstance(va, (int, float)) and not isinstance(vb, (int, float)):
            continue
        delta = vb - va if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else None
        rel = delta / va if delta is not None and va else None
        metrics.append(
            {
                "name": label,
                "key": ".".join(path),
                "format": fmt,
                "a": va,
                "b": vb,
                "delta": delta,
                "delta_rel": rel,
            }
        )
    cost = next((m for m in metrics if m["name"] == COST_KEY[ka]), None)
    cost_rel = cost["delta_rel"] if cost else None
    failed = fail_above_rel is not None and cost_rel is not None and cost_rel > fail_above_rel
    return {
        "kind": "diff",
        "compares": ka,
        "a": a_name,
        "b": b_name,
        "inputs": inputs,
        "metrics": metrics,
        "cost_change_rel": cost_rel,
        "fail_above_rel": fail_above_rel,
        "failed": failed,
    }


def _fmt(m: dict[str, Any], x: Any) -> str:
    return getattr(f, m["format"])(x) if x is not None else "-"


def _delta(m: dict[str, Any]) -> str:
    d = m["delta"]
    if d is None:
        return "-"
    if d == 0:
        return "no change"
    text = _fmt(m, abs(d))
    return ("+" if d > 0 else "-") + text


def view(d: dict[str, Any]) -> View:
    v = View()
    v.line(f"{d['compares']}: {d['a']} → {d['b']}", "bold")
    t = v.table(Table("What it does", ["metric", "A", "B", "change", "%"], right=("A", "B", "change", "%")))
    for m in d["metrics"]:
        t.add(m["name"], _fmt(m, m["a"]), _fmt(m, m["b"]), _delta(m), f.pct(m["delta_rel"], signed=True))
    i = v.table(Table("What changed in the inputs", ["input", "A", "B"], wrap=("A", "B")))
    for x in d["inputs"]:
        i.add(x["name"], f.value(x["a"]), f.value(x["b"]))
    if not d["inputs"]:
        v.line("no input changed")
    if d["fail_above_rel"] is not None:
        if d["cost_change_rel"] is None:
            v.line("cost change unknown (no price on one side): --fail-above not applied")
        else:
            verdict = "FAIL" if d["failed"] else "ok"
            v.line(
                f"{verdict}: cost changes {f.pct(d['cost_change_rel'], signed=True)} "
                f"(limit +{f.pct(d['fail_above_rel'])})",
                "red" if d["failed"] else "green",
            )
    return v
