"""`mlcost devices` and `mlcost models`: list the catalogs.

``gather_*`` functions compute plain rows (tested directly); the commands render them as rich tables or
print one JSON object with ``--json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from mlcost.cli import options
from mlcost.errors import MlcostError

CATALOG_OPTION_HELP = "Extra catalog override file (TOML); repeatable. Also read from $MLCOST_CATALOG."


def _catalog(extra: list[Path] | None) -> Any:
    from mlcost.catalog import get_catalog

    return get_catalog(extra or None)


def gather_devices(catalog: Any) -> dict[str, Any]:
    """One row per device with peaks in TFLOP/s, memory in GB, bandwidth in TB/s, TDP in W and the cheapest
    on-demand price (USD per device-hour) with where it is offered."""
    rows = []
    for dev in catalog.devices():
        cheapest: dict[str, Any] | None = None
        try:
            p = catalog.price(dev.id, pricing="on-demand")
            cheapest = {
                "usd_per_device_h": p.usd_per_device_h,
                "provider": p.provider,
                "region": p.region,
                "instance": p.instance,
                "date": p.date,
            }
        except MlcostError:
            cheapest = None
        rows.append(
            {
                "id": dev.id,
                "name": dev.name,
                "vendor": dev.vendor,
                "kind": dev.kind,
                "peak_tflops": {k: v / 1e12 for k, v in dev.peak_flops_per_s.items()},
                "memory_gb": dev.memory_bytes / 1e9,
                "mem_bw_tb_per_s": dev.mem_bw_bytes_per_s / 1e12,
                "tdp_w": dev.tdp_w,
                "devices_per_node": dev.devices_per_node,
                "cheapest_on_demand": cheapest,
                "source": dev.source,
                "date": dev.date,
            }
        )
    oldest, _latest = catalog.price_date_range
    return {"price_snapshot_date": catalog.price_snapshot_date, "oldest_price_date": oldest, "devices": rows}


def gather_models(catalog: Any) -> dict[str, Any]:
    """One row per model preset; ``params`` is filled when the parameter counter is available."""
    from mlcost.catalog import model_family

    counter: Callable[[Any], Any] | None
    try:
        from mlcost.estimate.params import count_params  # the estimator's counter; optional for now

        counter = count_params
    except ImportError:
        counter = None

    rows = []
    for row in catalog.model_rows():
        spec = row.spec
        params: int | None = None
        active: int | None = None
        if counter is not None:
            try:
                counts = counter(spec)
                params, active = int(counts.total), int(counts.active)
            except Exception:  # another module's code: never let it break the listing
                params = active = None
        rows.append(
            {
                "id": spec.name,
                "family": model_family(spec),
                "kind": spec.kind,
                "n_layers": spec.n_layers,
                "d_model": spec.d_model,
                "n_heads": spec.n_heads,
                "n_kv_heads": spec.kv_heads,
                "d_ff": spec.d_ff,
                "vocab_size": spec.vocab_size,
                "max_seq_len": spec.max_seq_len,
                "n_experts": spec.n_experts,
                "experts_top_k": spec.experts_top_k,
                "params": params,
                "active_params": active,
                "source": row.source,
                "date": row.date,
            }
        )
    return {"models": rows}


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def render_devices(data: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    table = Table(title="Devices (dense peaks)", title_justify="left")
    for col, justify in (
        ("id", "left"),
        ("name", "left"),
        ("bf16 TFLOP/s", "right"),
        ("fp32 TFLOP/s", "right"),
        ("memory GB", "right"),
        ("BW TB/s", "right"),
        ("TDP W", "right"),
        ("cheapest on-demand $/h", "right"),
        ("where", "left"),
    ):
        table.add_column(col, justify=justify, no_wrap=col == "id")  # type: ignore[arg-type]
    for r in data["devices"]:
        cheap = r["cheapest_on_demand"]
        table.add_row(
            r["id"],
            r["name"],
            _fmt(r["peak_tflops"].get("bf16"), 4),
            _fmt(r["peak_tflops"].get("fp32"), 4),
            _fmt(r["memory_gb"], 4),
            _fmt(r["mem_bw_tb_per_s"], 3),
            _fmt(r["tdp_w"], 4),
            "—" if cheap is None else f"{cheap['usd_per_device_h']:.2f}",
            "—" if cheap is None else f"{cheap['provider']} {cheap['region']}",
        )
    console.print(table)
    console.print(
        f"price snapshot date: {data['price_snapshot_date']} (rows observed {data['oldest_price_date']} to "
        f"{data['price_snapshot_date']}; prices go stale, check before you buy)"
    )


def _params_cell(r: dict[str, Any], format_si: Callable[[float], str]) -> str:
    if r["params"] is None:
        return "—"
    if r["active_params"] is not None and r["active_params"] != r["params"]:
        return f"{format_si(r['params'])} ({format_si(r['active_params'])} active)"
    return str(format_si(r["params"]))


def render_models(data: dict[str, Any], console: Any, snapshot_date: str) -> None:
    from rich.table import Table

    from mlcost.units import format_si

    table = Table(title="Model presets", title_justify="left")
    for col, justify in (
        ("id", "left"),
        ("family", "left"),
        ("kind", "left"),
        ("layers", "right"),
        ("d_model", "right"),
        ("heads/kv", "right"),
        ("d_ff", "right"),
        ("vocab", "right"),
        ("experts", "right"),
        ("params", "right"),
    ):
        table.add_column(col, justify=justify, no_wrap=col in ("id", "params"))  # type: ignore[arg-type]
    for r in data["models"]:
        table.add_row(
            r["id"],
            r["family"],
            r["kind"],
            str(r["n_layers"]),
            str(r["d_model"]),
            f"{r['n_heads']}/{r['n_kv_heads']}",
            str(r["d_ff"]),
            str(r["vocab_size"]),
            f"{r['experts_top_k']}/{r['n_experts']}" if r["n_experts"] else "—",
            _params_cell(r, format_si),
        )
    console.print(table)
    console.print(f"catalog snapshot date: {snapshot_date}")


def register(app: typer.Typer) -> None:
    """Add ``devices`` and ``models`` to the app."""

    @app.command("devices")
    def devices_command(
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
        catalog: list[Path] = options.text_files(None, "--catalog", help=CATALOG_OPTION_HELP),
    ) -> None:
        """List the devices in the catalog: dense peaks, memory, bandwidth, TDP and the cheapest
        on-demand price."""
        data = gather_devices(_catalog(catalog))
        if as_json:
            typer.echo(json.dumps(data, indent=2))
            return
        from rich.console import Console

        render_devices(data, Console())

    @app.command("models")
    def models_command(
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
        catalog: list[Path] = options.text_files(None, "--catalog", help=CATALOG_OPTION_HELP),
    ) -> None:
        """List the model presets (use their ids wherever a model is asked for)."""
        cat = _catalog(catalog)
        data = gather_models(cat)
        data["price_snapshot_date"] = cat.price_snapshot_date
        if as_json:
            typer.echo(json.dumps(data, indent=2))
            return
        from rich.console import Console

        render_models(data, Console(), cat.price_snapshot_date)
