"""Views of ``mlcost devices`` and ``mlcost models`` (the dicts of mlcost.cli.catalog.gather_*)."""

from __future__ import annotations

from typing import Any

from mlcost.report import format as f
from mlcost.report.view import Table, View


def _g(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f.number(float(f"{x:.{digits}g}"))


def devices_view(d: dict[str, Any]) -> View:
    v = View()
    t = v.table(
        Table(
            "Devices (dense peaks)",
            ["id", "bf16 TFLOP/s", "fp32 TFLOP/s", "mem GB", "TB/s", "TDP W", "$/h", "cheapest at"],
            right=("bf16 TFLOP/s", "fp32 TFLOP/s", "mem GB", "TB/s", "TDP W", "$/h"),
            wrap=("cheapest at",),
        )
    )
    names = v.table(
        Table("Device names and sources", ["id", "name", "source", "date"], wrap=("source",), explain=True)
    )
    for r in d["devices"]:
        cheap = r["cheapest_on_demand"]
        t.add(
            r["id"],
            _g(r["peak_tflops"].get("bf16"), 4),
            _g(r["peak_tflops"].get("fp32"), 4),
            _g(r["memory_gb"], 4),
            _g(r["mem_bw_tb_per_s"], 3),
            _g(r["tdp_w"], 4),
            "-" if cheap is None else f"{cheap['usd_per_device_h']:.2f}",
            "-" if cheap is None else f"{cheap['provider']} {cheap['region']}",
        )
        names.add(r["id"], r["name"], r["source"], r["date"])
    v.line(
        f"price snapshot date: {d['price_snapshot_date']} (rows observed {d['oldest_price_date']} to "
        f"{d['price_snapshot_date']}; prices go stale, check before you buy)"
    )
    return v


def models_view(d: dict[str, Any]) -> View:
    v = View()
    t = v.table(
        Table(
            "Model presets",
            ["id", "family", "layers", "d_model", "heads/kv", "d_ff", "vocab", "experts", "params"],
            right=("layers", "d_model", "heads/kv", "d_ff", "vocab", "experts", "params"),
        )
    )
    src = v.table(
        Table("Model sources", ["id", "kind", "context", "source", "date"], wrap=("source",), explain=True)
    )
    for r in d["models"]:
        params = f.count(r["params"])
        if r["active_params"] is not None and r["params"] is not None and r["active_params"] != r["params"]:
            params += f" ({f.count(r['active_params'])} act.)"
        t.add(
            r["id"],
            r["family"],
            r["n_layers"],
            r["d_model"],
            f"{r['n_heads']}/{r['n_kv_heads']}",
            r["d_ff"],
            r["vocab_size"],
            f"{r['experts_top_k']}/{r['n_experts']}" if r["n_experts"] else "-",
            params,
        )
        src.add(r["id"], r["kind"], r["max_seq_len"], r["source"], r["date"])
    v.line(f"catalog snapshot date: {d['price_snapshot_date']}")
    return v
