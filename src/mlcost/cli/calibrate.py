"""`mlcost calibrate`: measure this machine, fit the estimator's efficiency profile, save it for
``--device local``; ``--report`` compares predictions with completed ledger runs. torch is imported only
when measuring."""

from __future__ import annotations

from typing import Any

import typer

from mlcost.cli import options
from mlcost.cli._output import check_format, emit, explain_option, format_option
from mlcost.errors import MlcostError

LEDGER_HELP = "Ledger location: a SQLAlchemy URL or a path (default: $MLCOST_LEDGER or the user data dir)."


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
        "serve": cal.serve or None,
        "saved_to": str(_profile_dir()),
    }


def _profile_dir() -> Any:
    from mlcost.paths import profile_dir

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
    save_calibration(cal, _profile_dir())
    return problems


def _check_profile_dir() -> None:
    import os

    from mlcost.paths import ENV_PROFILE_DIR

    what = f"{ENV_PROFILE_DIR}" if os.environ.get(ENV_PROFILE_DIR) else "the profile directory"
    options.writable_dir(_profile_dir(), what)


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
        serve: bool = typer.Option(
            False,
            "--serve",
            help="Also fit the hf serving engine (transformers' continuous batching) on a calibration load.",
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
        fmt: str = format_option(),
        explain: bool = explain_option(),
    ) -> None:
        """Measure this machine (matmul, bandwidth, element-wise ops, all-reduce; short training runs),
        fit the estimator's efficiency profile, and save it: `--device local` then uses it."""
        from mlcost import context
        from mlcost.calibrate import pipeline
        from mlcost.report.calibrate import calibration_view, ledger_report_view
        from mlcost.report.console import make_console

        check_format(fmt, as_json)
        if report:
            rep = pipeline.ledger_report(
                ledger, calibration=context.local_calibration(), catalog=context.default_catalog()
            )
            emit(rep, ledger_report_view, fmt=fmt, as_json=as_json, explain=explain)
            return
        _check_profile_dir()  # before the benchmarks: an unwritable directory fails now, not after minutes
        err = make_console(stderr=True)
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
                # The catalog without the earlier calibration: calibrating twice gives the same rows.
                catalog=context.default_catalog(calibration=False),
                directory=_profile_dir(),
                save=False,
                serve=serve,
            )
        problems = _save_or_refuse(cal, fit, force=force, warn=err)
        if problems and not force:
            raise FitQualityError(problems)  # nothing saved, nothing rendered as if it were
        context.invalidate()
        emit(calibration_json(cal, fit), calibration_view, fmt=fmt, as_json=as_json, explain=explain)


__all__ = ["calibration_json", "register"]
