"""`mlcost calibrate`: measure this machine, fit the estimator's efficiency profile, save it for
``--device local``; ``--report`` compares predictions with completed ledger runs. torch is imported only
when measuring."""

from __future__ import annotations

import json
from typing import Any

import typer

from mlcost.calibrate.fit import PARAM_MEANING
from mlcost.cli import options
from mlcost.errors import MlcostError

LEDGER_HELP = "Ledger location: a SQLAlchemy URL or a path (default: $MLCOST_LEDGER or the user data dir)."


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    console = Console(stderr=stderr)
    if not console.is_terminal:
        console = Console(width=160, stderr=stderr)
    return console


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * float(x):+.1f}%"


def _si(v: float, unit: str) -> str:
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g} {prefix}{unit}"
    return f"{v:.3g} {unit}"


def calibration_json(cal: Any, fit: Any) -> dict[str, Any]:
    """The ``--json`` object of ``mlcost calibrate`` (documented in docs/calibrate.md)."""
    return {
        "device": cal.device.to_dict(),
        "profile": cal.profile.to_dict(),
        "base_device": cal.base_device,
        "peak_source": cal.source,
        "microbench": cal.microbench,
        "fit": None
        if fit is None
        else {"time_mape": fit.time_mape, "memory_mean_abs_rel": fit.memory_mean_abs_rel, "rows": fit.rows},
        "provenance": cal.provenance,
        "saved_to": str(_profile_dir()),
    }


def _profile_dir() -> Any:
    from mlcost.calibrate.profile import profile_dir

    return profile_dir()


class FitQualityError(MlcostError):
    """The fitted profile was not saved: parameters at their bounds or too large an error."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "calibration not saved: the fit is poor (" + "; ".join(problems) + ")",
            hint="re-run on a quieter machine or with more runs, or pass --force to save it anyway",
        )


def _save_or_refuse(cal: Any, fit: Any, *, force: bool, warn: Any) -> list[str]:
    """Save the calibration unless the fit is poor (then only with ``force``, with a warning).
    Returns the fit's problems (empty when it is fine or there was no fit)."""
    from mlcost.calibrate.fit import fit_problems
    from mlcost.calibrate.profile import save_calibration

    problems = fit_problems(fit) if fit is not None else []
    if problems and not force:
        return problems
    if problems:
        warn.print(f"warning: saving a poor fit (--force): {'; '.join(problems)}", highlight=False)
    save_calibration(cal)
    return problems


def _check_profile_dir() -> None:
    import os

    from mlcost.calibrate.profile import ENV_PROFILE_DIR

    what = f"{ENV_PROFILE_DIR}" if os.environ.get(ENV_PROFILE_DIR) else "the profile directory"
    options.writable_dir(_profile_dir(), what)


def render_calibration(console: Any, cal: Any, fit: Any) -> None:
    from rich.table import Table

    mb = cal.microbench
    t = Table(
        title=f"Measured on {cal.provenance.get('host', '?')} ({cal.provenance.get('cpu_model') or '?'})"
    )
    t.add_column("what")
    t.add_column("measured", justify="right")
    for dtype, rates in mb.get("matmul_flops_per_s", {}).items():
        curve = ", ".join(f"{n}: {_si(r, 'FLOP/s')}" for n, r in rates.items())
        t.add_row(f"matmul {dtype} (n×n)", curve)
    t.add_row("copy bandwidth (read+write)", _si(mb.get("copy_bytes_per_s", 0.0), "B/s"))
    for op, bw in mb.get("elementwise_bytes_per_s", {}).items():
        t.add_row(f"{op} throughput", _si(bw, "B/s"))
    if mb.get("allreduce_bus_bytes_per_s"):
        for size, bw in mb["allreduce_bus_bytes_per_s"].items():
            t.add_row(f"all-reduce 2 procs, {int(size) // 1024} KiB", _si(bw, "B/s") + " bus")
    else:
        t.add_row("all-reduce 2 procs", f"skipped: {mb.get('allreduce_error')}")
    console.print(t)
    peaks = ", ".join(f"{k} {_si(v, 'FLOP/s')}" for k, v in cal.device.peak_flops_per_s.items())
    console.print(
        f"device 'local': peak {peaks}; memory bandwidth {_si(cal.device.mem_bw_bytes_per_s, 'B/s')}"
    )
    p = Table(title="Fitted efficiency profile (device 'local')")
    p.add_column("parameter")
    p.add_column("value", justify="right")
    p.add_column("meaning")
    prof = cal.profile.to_dict()
    for name, meaning in PARAM_MEANING.items():
        p.add_row(name, f"{prof[name]:.4g}", meaning)
    console.print(p)
    if fit is not None:
        console.print(
            f"fit on {len(fit.rows)} runs: step-time MAPE {100 * fit.time_mape:.1f}%"
            + (
                f", memory mean |error| {100 * fit.memory_mean_abs_rel:.1f}%"
                if fit.memory_mean_abs_rel is not None
                else ""
            )
        )
    else:
        console.print("no training runs fitted (--no-runs): efficiencies come from the microbenchmarks only")
    console.print(
        f"saved to {_profile_dir()} — `--device local` now uses it; MFU on this CPU uses {cal.source}"
    )


def render_report(console: Any, rep: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table(title=f"Ledger runs: predicted vs measured step time ({rep['profile']})")
    for col in ("run id", "model", "config", "measured", "predicted", "error"):
        t.add_column(col, justify="right" if col in ("measured", "predicted", "error") else "left")
    for r in rep["runs"]:
        t.add_row(
            r["run_id"][:8],
            r["model"],
            r["config"],
            f"{1e3 * r['measured_step_time_s']:.1f} ms",
            f"{1e3 * r['predicted_step_time_s']:.1f} ms",
            _pct(r["step_time_error_rel"]),
        )
    console.print(t)
    if rep["runs"]:
        console.print(f"MAPE over {len(rep['runs'])} runs: {100 * rep['step_time_mape']:.1f}%")
    else:
        console.print("no comparable runs (completed, single-process CPU baseline runs with a model shape)")


def register(app: typer.Typer) -> None:
    """Add ``calibrate`` to the app."""

    @app.command("calibrate")
    def calibrate(
        quick: bool = typer.Option(
            False, "--quick", help="Shorter microbenchmarks and fewer runs (≈ 1 min)."
        ),
        no_runs: bool = typer.Option(
            False, "--no-runs", help="Microbenchmarks only; no training runs fitted."
        ),
        runs: int | None = options.nonneg_int(
            None, "--runs", maximum=1000, help="Training runs to measure (default 10, 8 with --quick)."
        ),
        ledger: str | None = typer.Option(None, "--ledger", help=LEDGER_HELP),
        report: bool = typer.Option(
            False, "--report", help="Show predicted vs measured for ledger runs; measure nothing."
        ),
        force: bool = typer.Option(
            False,
            "--force",
            help="Save the fit even when parameters sit at their bounds or its step-time MAPE is above 20%.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Measure this machine (matmul, bandwidth, element-wise ops, all-reduce; short training runs),
        fit the estimator's efficiency profile, and save it: `--device local` then uses it."""
        from mlcost.calibrate import pipeline

        if report:
            rep = pipeline.ledger_report(ledger)
            if as_json:
                from mlcost.report.jsonout import dumps

                typer.echo(dumps(rep))
            else:
                render_report(_console(), rep)
            return
        _check_profile_dir()  # before the benchmarks: an unwritable directory fails now, not after minutes
        err = _console(stderr=True)
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal,  # no stray newline on a non-terminal stderr
        ) as bar:
            task = bar.add_task("calibrating", total=None)
            cal, fit = pipeline.run_calibration(
                quick=quick,
                runs=runs,
                use_runs=not no_runs,
                ledger_url=ledger,
                progress=lambda msg: bar.update(task, description=msg),
                save=False,
            )
        problems = _save_or_refuse(cal, fit, force=force, warn=err)
        if problems and not force:
            raise FitQualityError(problems)  # nothing saved, nothing rendered as if it were
        if as_json:
            from mlcost.report.jsonout import dumps

            typer.echo(dumps(calibration_json(cal, fit)))
        else:
            render_calibration(_console(), cal, fit)


__all__ = ["calibration_json", "json", "register", "render_calibration", "render_report"]
