"""`mlcost env`: what hardware, libraries, energy counters, ledger and catalog mlcost sees here."""

from __future__ import annotations

import json
from typing import Any

import typer


def _gib(n: Any) -> str:
    return f"{n / 2**30:.1f} GiB" if isinstance(n, (int, float)) else "?"


def render_env(env: dict[str, Any]) -> None:
    """Print the environment as aligned sections."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    cpu = env["cpu"]
    have = [f for f, on in cpu["flags"].items() if on]
    lacking = [f for f, on in cpu["flags"].items() if not on]
    table.add_row("CPU", str(cpu["model"]))
    table.add_row("  ISA", f"has: {' '.join(have) or '-'}; lacks: {' '.join(lacking) or '-'}")
    for note in cpu["implications"]:
        table.add_row("", f"→ {note}")
    cores = env["cores"]
    table.add_row(
        "cores",
        f"{cores.get('logical')} logical, {cores.get('physical')} physical, {cores.get('affinity')} usable",
    )
    table.add_row("memory", _gib(env["memory_total_bytes"]))
    if env["gpus"]:
        for g in env["gpus"]:
            extra = f", driver {g['driver']}" if g.get("driver") else ""
            table.add_row(f"GPU {g['index']}", f"{g['name']}, {_gib(g.get('memory_bytes'))}{extra}")
    else:
        table.add_row("GPUs", "none")
    t = env["torch"]
    if t["installed"]:
        cuda = f"CUDA {t['cuda_version']}" if t.get("cuda_available") else "no CUDA"
        table.add_row("torch", f"{t['version']} ({cuda})" + (f"; {t['note']}" if t.get("note") else ""))
    else:
        table.add_row("torch", f"not installed ({t.get('note')})")
    tr = env["transformers"]
    table.add_row("transformers", tr["version"] if tr["installed"] else "not installed")
    e = env["energy"]
    counters = [name for name in ("nvml", "rapl") if e.get(name)] or ["none"]
    table.add_row("energy", f"counters: {', '.join(counters)} → {e['note']}")
    led = env["ledger"]
    runs = (
        f", {led['runs']} runs"
        if led.get("runs") is not None
        else (", not created yet" if led.get("exists") is False else "")
    )
    table.add_row("ledger", f"{led['url']}{runs}" + (" (from MLCOST_LEDGER)" if led.get("from_env") else ""))
    cat = env["catalog"]
    if cat.get("available"):
        bits = [
            f"{k} {cat[k]}" for k in ("snapshot_date", "date", "version", "devices") if cat.get(k) is not None
        ]
        table.add_row("catalog", ", ".join(bits) or "available")
    else:
        table.add_row("catalog", f"unavailable ({cat.get('error')})")
    table.add_row("python", f"{env['python']} on {env['hostname']}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""

    @app.command("env")
    def env_command(
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
        torch: bool = typer.Option(
            False, "--torch", help="Import torch to check CUDA even without a visible NVIDIA driver."
        ),
    ) -> None:
        """Show the CPU (and what its ISA means for mlcost), GPUs, libraries, energy counters, ledger and
        catalog that mlcost sees on this machine."""
        from mlcost.env import collect_env

        env = collect_env(import_torch=True if torch else None)
        if as_json:
            typer.echo(json.dumps(env))
        else:
            render_env(env)
