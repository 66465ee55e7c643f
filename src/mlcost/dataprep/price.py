"""Price a data cut: tokens removed → GPU-hours, $, kWh and CO2 saved for a target training job.

The figures come from :func:`mlcost.estimate.estimate_train`, called twice — on the token count before and
after the cuts — with the same job defaults as ``mlcost estimate train`` (sequence length 2048 capped at the
model's context; about 2^20 tokens per optimizer step, a multiple of micro-batch × data-parallel degree).
The saving is the difference of the two estimates; its error band is the difference of the two estimates'
band edges (the estimator's error is systematic, so it moves both runs the same way).

Two framings (``--framing``):
- ``same-epochs``: the clean corpus is trained for the same number of epochs, so fewer tokens are trained;
  the saving is the cost of the removed tokens.
- ``same-compute``: the clean corpus is trained for more epochs, up to the original token budget; the compute
  and the bill do not change (saving 0 $), and what the cut buys is quality: the budget goes to clean,
  unique tokens instead of duplicates and low-quality text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlcost.errors import SpecError

Framing = Literal["same-epochs", "same-compute"]
FRAMINGS = ("same-epochs", "same-compute")
#: The same defaults as ``mlcost estimate train`` (src/mlcost/cli/estimate.py): tokens per optimizer step when
#: no global batch is given, and the default sequence length cap.
#: Totals reported for each run and for the saving.
TOTALS = ("total_time_s", "device_hours", "cost_usd", "energy_kwh", "co2_kg")


@dataclass(frozen=True, kw_only=True)
class JobTarget:
    """The training job the corpus is for.

    Attributes:
        model, device, gpus: as in ``mlcost estimate train`` (preset names from the catalog).
        seq_len, global_batch: None = the ``estimate train`` defaults.
        precision, pricing, provider, region: as in ``estimate train``.
        epochs: passes over the corpus before the cut.
        framing: ``same-epochs`` or ``same-compute`` (module docstring).
        scale_to_tokens: price a corpus of this many tokens (before the cut) with the removal share measured
            on the input, instead of the input's own count (the input is a sample).
        catalog_paths: extra catalog files (``--catalog``).
        catalog: the catalog to price with (the CLI passes its default); None = built-in + ``catalog_paths``.
    """

    model: str = "llama-3.1-8b"
    device: str = "h100-sxm"
    gpus: int = 8
    seq_len: int | None = None
    global_batch: int | None = None
    precision: str = "bf16"
    pricing: str = "on-demand"
    provider: str | None = None
    region: str | None = None
    epochs: float = 1.0
    framing: Framing = "same-epochs"
    scale_to_tokens: float | None = None
    catalog_paths: tuple[Path, ...] = field(default=())
    catalog: Any = None

    def __post_init__(self) -> None:
        if self.framing not in FRAMINGS:
            raise SpecError(
                f"--framing {self.framing!r} is not known", hint="use same-epochs or same-compute"
            )
        if not (self.epochs > 0 and math.isfinite(self.epochs)):
            raise SpecError(f"--epochs {self.epochs} must be positive", hint="e.g. --epochs 1")
        if self.gpus < 1:
            raise SpecError(f"--gpus {self.gpus} must be at least 1", hint="e.g. --gpus 64")
        if self.scale_to_tokens is not None and self.scale_to_tokens <= 0:
            raise SpecError(
                f"--scale-to {self.scale_to_tokens:g} must be positive", hint="e.g. --scale-to 15T"
            )


def _catalog(target: JobTarget) -> Any:
    """The catalog to price with: the one given (the CLI's default), else the built-in one plus
    ``--catalog`` files."""
    if target.catalog is not None:
        return target.catalog
    from mlcost.catalog import get_catalog

    return get_catalog(extra=list(target.catalog_paths) or None)


def estimate_tokens(target: JobTarget, tokens: float, catalog: Any | None = None) -> Any:
    """``estimate_train`` for ``target`` trained on ``tokens`` tokens, with ``mlcost estimate train``'s
    defaults. The one call into mlcost.estimate: everything this module prices goes through here."""
    from mlcost.catalog import resolve_model
    from mlcost.estimate import estimate_train
    from mlcost.plan.defaults import train_defaults
    from mlcost.spec import Cluster, TrainJob

    cat = catalog if catalog is not None else _catalog(target)
    spec = resolve_model(target.model, cat)
    # the same defaults as `mlcost estimate train` (plan.defaults), rounded the same way
    dflt = train_defaults(spec, target.seq_len, target.global_batch)
    seq_len = target.seq_len or dflt.seq_len
    global_batch = target.global_batch
    if global_batch is None:
        unit = max(target.gpus, 1)  # micro-batch 1 × DP (TP = PP = 1)
        global_batch = max(unit, math.ceil(dflt.global_batch / unit) * unit)
    job = TrainJob(
        tokens=tokens,
        seq_len=seq_len,
        global_batch=global_batch,
        micro_batch=1,
        precision=target.precision,  # type: ignore[arg-type]
    )
    cluster = Cluster(
        device=target.device,
        count=target.gpus,
        provider=target.provider,
        region=target.region,
        pricing=target.pricing,  # type: ignore[arg-type]
    )
    return estimate_train(spec, job, cluster, catalog=cat)


@dataclass(frozen=True)
class PriceResult:
    """Before/after estimates and the saving.

    Attributes:
        framing, epochs: as given; ``clean_epochs`` = epochs over the clean corpus (same-compute: more).
        corpus_tokens_before / _after: corpus sizes priced (scaled when ``scale_to_tokens`` is set).
        trained_tokens_before / _after: tokens trained in each run.
        before / after: totals of each run: total_time_s, device_hours, cost_usd (None without a price),
            energy_kwh, co2_kg.
        saved: before − after for each total (tokens too).
        saved_ranges: [low, high] of each saving from the estimator's error band.
        error_band_relative, error_band_source: the estimator's band.
        assumptions: defaults and catalog rows the estimate used.
    """

    model: str
    device: str
    gpus: int
    framing: str
    epochs: float
    clean_epochs: float
    corpus_tokens_before: float
    corpus_tokens_after: float
    trained_tokens_before: float
    trained_tokens_after: float
    before: dict[str, float | None]
    after: dict[str, float | None]
    saved: dict[str, float | None]
    saved_ranges: dict[str, list[float] | None]
    error_band_relative: float
    error_band_source: str
    assumptions: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "device": self.device,
            "gpus": self.gpus,
            "framing": self.framing,
            "epochs": self.epochs,
            "clean_epochs": self.clean_epochs,
            "corpus_tokens_before": self.corpus_tokens_before,
            "corpus_tokens_after": self.corpus_tokens_after,
            "trained_tokens_before": self.trained_tokens_before,
            "trained_tokens_after": self.trained_tokens_after,
            "before": dict(self.before),
            "after": dict(self.after),
            "saved": dict(self.saved),
            "saved_ranges": dict(self.saved_ranges),
            "error_band": {"relative": self.error_band_relative, "source": self.error_band_source},
            "assumptions": list(self.assumptions),
        }


def _totals(est: Any) -> dict[str, float | None]:
    return {k: getattr(est, k) for k in TOTALS}


def _sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def price_cut(
    tokens_before: float, tokens_after: float, target: JobTarget, catalog: Any | None = None
) -> PriceResult:
    """Estimate the job on the corpus before and after the cut and take the difference."""
    if tokens_before <= 0:
        raise SpecError("the corpus has no tokens to price", hint="check --input and --text-field")
    assumptions: list[dict[str, Any]] = []
    before_c, after_c = float(tokens_before), float(tokens_after)
    if target.scale_to_tokens is not None:
        share = after_c / before_c
        before_c, after_c = target.scale_to_tokens, target.scale_to_tokens * share
        assumptions.append(
            {
                "name": "scale_to_tokens",
                "value": target.scale_to_tokens,
                "source": f"--scale-to: the measured kept share {share:.4f} applied to a corpus of this size",
            }
        )
    trained_before = before_c * target.epochs
    if target.framing == "same-epochs":
        trained_after, clean_epochs = after_c * target.epochs, target.epochs
    else:
        trained_after = trained_before
        clean_epochs = trained_before / after_c if after_c > 0 else math.inf
    est_b = estimate_tokens(target, trained_before, catalog)
    est_a = estimate_tokens(target, max(trained_after, 1.0), catalog) if trained_after > 0 else None
    before = _totals(est_b)
    after: dict[str, float | None] = (
        _totals(est_a) if est_a is not None else {k: (None if before[k] is None else 0.0) for k in TOTALS}
    )
    saved = {k: _sub(before[k], after[k]) for k in TOTALS}
    saved["tokens"] = trained_before - trained_after
    ranges: dict[str, list[float] | None] = {}
    rb = est_b.error_band.ranges
    ra = est_a.error_band.ranges if est_a is not None else {}
    for k in TOTALS:
        if k in rb:
            lo_a, hi_a = ra.get(k, (0.0, 0.0))
            ranges[k] = [rb[k][0] - lo_a, rb[k][1] - hi_a]
        else:
            ranges[k] = None
    assumptions.extend(a.to_dict() for a in est_b.assumptions)
    return PriceResult(
        model=target.model,
        device=target.device,
        gpus=target.gpus,
        framing=target.framing,
        epochs=target.epochs,
        clean_epochs=clean_epochs,
        corpus_tokens_before=before_c,
        corpus_tokens_after=after_c,
        trained_tokens_before=trained_before,
        trained_tokens_after=trained_after,
        before=before,
        after=after,
        saved=saved,
        saved_ranges=ranges,
        error_band_relative=est_b.error_band.relative,
        error_band_source=est_b.error_band.source,
        assumptions=assumptions,
    )
