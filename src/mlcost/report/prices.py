"""Render the per-region price listing of ``mlcost devices --provider/--region/--spot/--max-price``."""

from __future__ import annotations

from typing import Any


def render_region_prices(data: dict[str, Any], console: Any, limit: int | None = None) -> None:
    """A table like ``sky show-gpus``: device, where, on-demand and spot $/device-hour, carbon, commit."""
    from rich.table import Table

    rows = data["prices"]
    shown = rows if limit is None else rows[:limit]
    table = Table(title="Prices per device-hour, cheapest first", title_justify="left")
    for col, justify in (
        ("device", "left"),
        ("provider", "left"),
        ("region", "left"),
        ("on-demand $/h", "right"),
        ("spot $/h", "right"),
        ("instance", "left"),
        ("kg CO2/kWh", "right"),
        ("snapshot", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in shown:
        od, sp = r["usd_per_device_h"], r["spot_usd_per_device_h"]
        table.add_row(
            r["device"],
            r["provider"],
            r["region"],
            "—" if od is None else f"{od:.3f}",
            "—" if sp is None else f"{sp:.3f}",
            str(r["spot_instance"] if data["filters"]["spot"] else r["instance"]),
            "no carbon data"
            if r["kg_co2_per_kwh"] is None
            else f"{r['kg_co2_per_kwh']:.3f}" + (" (country)" if r["carbon"] != "region" else ""),
            (r["snapshot_commit"] or "-")[:10],
        )
    console.print(table)
    if len(shown) < len(rows):
        console.print(f"({len(shown)} of {len(rows)} rows shown; --json lists all)")
    commits = "; ".join(f"{path} @ {sha[:10]}" for path, sha in data["snapshot_commits"].items())
    console.print(f"price snapshot {data['price_snapshot_date']}: {commits or 'no imported rows'}")
