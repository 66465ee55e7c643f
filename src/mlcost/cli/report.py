"""``mlcost report``: one self-contained HTML file from estimate/plan/calibration JSON files and ledger runs.

This module reads the inputs, asks the estimator for the breakdown of a plan's chosen layout, and hands
everything to :mod:`mlcost.report.html` (which renders only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from mlcost.errors import LedgerError, SpecError

LEDGER_HELP = (
    "Ledger URL or SQLite path whose runs to include (default: $MLCOST_LEDGER when no file is given)."
)


def read_result(path: Path) -> tuple[str, dict[str, Any]]:
    """(kind, object) of an mlcost JSON output: 'estimate', 'plan', 'calibration'; exit 2 otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(
            f"cannot read {path}: {exc.strerror}", hint="give an mlcost --json output file"
        ) from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        raise SpecError(
            f"{path} is not JSON", hint="give the output of mlcost estimate/plan/calibrate --json"
        ) from None
    kind = obj.get("kind") if isinstance(obj, dict) else None
    if kind in ("train", "serve") and "assumptions" in obj:
        return "estimate", obj
    if kind in ("plan-train", "plan-serve", "plan-serve-slo"):
        return "plan", obj
    if isinstance(obj, dict) and ("microbench" in obj or "step_time_mape" in obj):
        return "calibration", obj
    from mlcost.report.html import BUILTIN_SECTIONS, sections

    if isinstance(kind, str) and kind in sections() and kind not in BUILTIN_SECTIONS:
        return "extra", obj  # another command's result with a registered section (compress, data, ...)
    raise SpecError(
        f"{path} is not an mlcost estimate, plan or calibration JSON",
        hint="make it with mlcost estimate train --json, mlcost plan train --json or mlcost calibrate --json",
    )


def open_existing_ledger(url: str | None) -> Any:
    """The ledger at ``url`` (default: $MLCOST_LEDGER / user data dir); a missing SQLite file is an error
    (a report must not create an empty ledger)."""
    import sqlalchemy as sa

    from mlcost.measure.ledger import Ledger, resolve_url

    full = resolve_url(url)
    parsed = sa.engine.make_url(full)
    db = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if db not in (None, "", ":memory:") and not Path(str(db)).exists():
        raise LedgerError(f"no ledger at {db}", hint="check --ledger (mlcost runs lists a ledger's runs)")
    return Ledger(full)


def select_runs(
    ledger: Any, run_ids: list[str], tags: list[str], since: str | None, until: str | None, limit: int
) -> list[dict[str, Any]]:
    """Record dicts (with display_status) of the runs asked for: ids (prefixes), or the most recent
    ``limit`` runs filtered by tag (the run's strategy, or config 'tag'/'tags') and start time (ISO)."""
    records = [ledger.get(r) for r in run_ids] if run_ids else ledger.list_runs(limit=limit)
    out = []
    for r in records:
        if tags:
            c = r.config or {}
            have = {r.strategy, c.get("tag")} | set(c.get("tags") or [])
            if not have & set(tags):
                continue
        if since and r.started_at < since:
            continue
        if until and r.started_at > until:
            continue
        out.append({**r.to_dict(), "display_status": ledger.display_status(r)})
    return out


def plan_estimate(plan: dict[str, Any]) -> dict[str, Any] | None:
    """The full estimate of a plan's #1 (its time and memory breakdown), or None for plan serve/infeasible."""
    if plan.get("kind") != "plan-train" or plan.get("status") != "ok" or not plan.get("plans"):
        return None
    from mlcost.catalog import resolve_model
    from mlcost.context import default_catalog
    from mlcost.estimate import estimate_train
    from mlcost.spec import Cluster, TrainJob

    p = plan["plans"][0]
    cat = default_catalog()
    job = TrainJob(
        tokens=plan["tokens"],
        seq_len=p["seq_len"],
        global_batch=p["global_batch"],
        micro_batch=p["micro_batch"],
        precision=p["precision"],
        optimizer=p["optimizer"],
        tp=p["tp"],
        pp=p["pp"],
        zero=p["zero"],
        recompute=p["recompute"],
        sequence_parallel=p["sequence_parallel"],
        flash_attention=p["flash_attention"],
        overlap_grad_reduce=p["overlap_grad_reduce"],
        goodput=p["goodput"],
    )
    cluster = Cluster(
        device=p["device"],
        count=p["count"],
        provider=p["provider"],
        region=p["region"],
        pricing=p["pricing"],
        price_usd_per_device_h=p["price_usd_per_device_h"],
        pue=p["pue"],
        carbon_kg_per_kwh=p["carbon_kg_per_kwh"],
    )
    return estimate_train(resolve_model(plan["model"], cat), job, cluster, catalog=cat).to_dict()  # type: ignore[no-any-return]


def write_atomically(path: Path, text: str) -> int:
    """Write ``text`` to ``path`` through a temporary file (nothing half-written); returns the bytes."""
    data = text.encode("utf-8")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SpecError(f"cannot write {path}: {exc.strerror}", hint="check --output") from None
    return len(data)


def register(app: typer.Typer) -> None:
    """Add ``mlcost report`` to the app."""

    @app.command("report")
    def report_command(
        files: list[Path] = typer.Argument(None, help="mlcost --json outputs: estimate, plan, calibrate."),
        ledger: str | None = typer.Option(None, "--ledger", help=LEDGER_HELP),
        run: list[str] = typer.Option(None, "--run", help="Only this run id (prefix); repeatable."),
        tag: list[str] = typer.Option(None, "--tag", help="Only runs with this strategy or config tag."),
        since: str | None = typer.Option(None, "--since", help="Only runs started at or after (ISO, UTC)."),
        until: str | None = typer.Option(None, "--until", help="Only runs started at or before (ISO, UTC)."),
        limit: int = typer.Option(500, "--limit", min=1, help="Most recent runs to consider."),
        output: Path = typer.Option(Path("report.html"), "--output", "-o", help="HTML file to write."),
        title: str = typer.Option("mlcost report", "--title", help="Title of the report."),
    ) -> None:
        """Write one self-contained HTML report (plots and tables; opens without a network)."""
        from datetime import datetime, timezone

        from mlcost import __version__
        from mlcost.report.html import ReportInputs, figure_count, render_html

        inp = ReportInputs(title=title)
        for path in files or []:
            kind, obj = read_result(path)
            if kind == "extra":
                inp.extra[obj["kind"]] = obj
            else:
                setattr(inp, kind, obj)
        if inp.plan is not None:
            inp.plan_estimate = plan_estimate(inp.plan)
        if ledger is not None or run or tag or since or until or not files:
            led = open_existing_ledger(ledger)
            try:
                inp.runs = select_runs(led, list(run or []), list(tag or []), since, until, limit)
                inp.ledger = str(led.location)
            finally:
                led.close()
        text = render_html(
            inp,
            generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            version=__version__,
        )
        size = write_atomically(output, text)
        runs = "" if inp.runs is None else f", {len(inp.runs)} runs"
        typer.echo(f"wrote {output} ({size / 1e6:.1f} MB, {figure_count(inp)} plots{runs})")
