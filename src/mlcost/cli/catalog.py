"""`mlcost devices` and `mlcost models`: list the catalogs.

``gather_*`` functions compute plain rows (tested directly); the commands render them as rich tables or
print one JSON object with ``--json``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from mlcost.cli import options
from mlcost.cli._output import emit, explain_option, format_option
from mlcost.errors import MlcostError

CATALOG_OPTION_HELP = "Extra catalog override file (TOML); repeatable. Also read from $MLCOST_CATALOG."


def _catalog(extra: list[Path] | None) -> Any:
    from mlcost.context import default_catalog

    return default_catalog(extra or None)


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


def _region_listing(
    cat: Any,
    device: str | None,
    provider: str | None,
    region: str | None,
    max_price: float | None,
    spot: bool,
    limit: int,
    as_json: bool,
) -> None:
    from mlcost.catalog.regions import region_prices, snapshot_commits
    from mlcost.errors import SpecError

    if max_price is not None and not max_price > 0:
        raise SpecError(f"--max-price must be a positive number of USD per device-hour, got {max_price:g}")
    if limit < 1:
        raise SpecError(f"--limit must be at least 1, got {limit}")
    rows = region_prices(
        cat, device=device, provider=provider, region=region, max_price_usd_per_h=max_price, spot=spot
    )
    data = {
        "price_snapshot_date": cat.price_snapshot_date,
        "snapshot_commits": snapshot_commits(cat),
        "filters": {
            "device": device,
            "provider": provider,
            "region": region,
            "max_price_usd_per_h": max_price,
            "spot": spot,
        },
        "prices": rows,
    }
    if as_json:
        from mlcost.report.console import print_json

        print_json(data)
        return
    from mlcost.report.console import make_console
    from mlcost.report.prices import render_region_prices

    render_region_prices(data, make_console(), limit)


def register(app: typer.Typer) -> None:
    """Add ``devices`` and ``models`` to the app."""

    @app.command("devices")
    def devices_command(
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
        catalog: list[Path] = options.text_files(None, "--catalog", help=CATALOG_OPTION_HELP),
        device: str | None = typer.Option(None, "--device", help="Per-region prices of this device only."),
        provider: str | None = typer.Option(None, "--provider", help="Per-region prices at this provider."),
        region: str | None = typer.Option(None, "--region", help="Per-region prices in this region."),
        max_price: float | None = typer.Option(
            None, "--max-price", help="Only prices up to this many USD per device-hour."
        ),
        spot: bool = typer.Option(False, "--spot", help="Regions with a spot price, ranked by it."),
        limit: int = typer.Option(40, "--limit", help="Rows shown in the table (--json lists all)."),
        fmt: str = format_option(),
        explain: bool = explain_option(),
    ) -> None:
        """List the devices in the catalog: dense peaks, memory, bandwidth, TDP and the cheapest
        on-demand price. With --device/--provider/--region/--max-price/--spot: the cheapest price per
        device and region (on-demand and spot, per device-hour) with the price snapshot's commit."""
        from mlcost.cli._output import check_format
        from mlcost.report.catalog import devices_view

        if any(x is not None for x in (device, provider, region, max_price)) or spot:
            as_json = check_format(fmt, as_json) == "json"
            _region_listing(_catalog(catalog), device, provider, region, max_price, spot, limit, as_json)
            return

        emit(gather_devices(_catalog(catalog)), devices_view, fmt=fmt, as_json=as_json, explain=explain)

    @app.command("models")
    def models_command(
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
        catalog: list[Path] = options.text_files(None, "--catalog", help=CATALOG_OPTION_HELP),
        fmt: str = format_option(),
        explain: bool = explain_option(),
    ) -> None:
        """List the model presets (use their ids wherever a model is asked for)."""
        cat = _catalog(catalog)
        data = gather_models(cat)
        data["price_snapshot_date"] = cat.price_snapshot_date
        from mlcost.report.catalog import models_view

        emit(data, models_view, fmt=fmt, as_json=as_json, explain=explain)
