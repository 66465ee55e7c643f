"""``mlcost export PLAN.json``: write the launch files of a saved plan (SkyPilot task, torchrun/accelerate,
DeepSpeed, Megatron-LM arguments). The files are built by :mod:`mlcost.plan.export`."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add ``export`` to the app."""

    @app.command("export")
    def export_command(
        plan_file: Path = typer.Argument(
            ..., help="Output of 'mlcost plan train --json', or an exported plan.json."
        ),
        out: Path = typer.Option(
            Path("mlcost-export"), "--out", "-o", help="Directory to write the files into."
        ),
        rank: int = typer.Option(1, "--rank", help="Which plan of a 'plan train --json' file (1 = best)."),
        catalog: list[Path] | None = typer.Option(
            None, "--catalog", help="Extra catalog TOML file(s) overriding package data."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the written paths as JSON."),
    ) -> None:
        """Write sky.yaml, launch.sh, accelerate_fsdp.yaml, ds_config.json, megatron_args.txt and plan.json for a
        plan; each names the plan and the catalog snapshot it came from."""
        from mlcost.catalog import resolve_model
        from mlcost.context import default_catalog
        from mlcost.errors import SpecError
        from mlcost.plan.export import build_exports, load_plan_file, write_files

        if rank < 1:
            raise SpecError(f"--rank must be at least 1, got {rank}")
        doc = load_plan_file(plan_file, rank)
        cat = default_catalog(catalog or None)
        model = resolve_model(doc["model"], cat)
        per_node = cat.device(doc["plan"]["device"]).devices_per_node
        files = build_exports(model, float(doc["tokens"]), doc["plan"], doc["snapshot"] or {}, per_node)
        written = [str(p) for p in write_files(files, out)]
        if as_json:
            typer.echo(json.dumps({"out": str(out), "files": written}, indent=2))
            return
        typer.echo(f"wrote {len(written)} files to {out}: {', '.join(Path(p).name for p in written)}")
