"""The runner's public names, kept where callers import them from. The code lives in:

* :mod:`mlcost.measure.options`   — typed options (TrainOptions, ServeOptions, shapes, cost, RunFacts)
* :mod:`mlcost.measure.validate`  — checks before torch starts, messages naming the flags
* :mod:`mlcost.measure.facts`     — device row, price / PUE / carbon, MFU peak, the predicted block
* :mod:`mlcost.measure.lifecycle` — one run from ``running`` to its final record (signals, ledger)
* :mod:`mlcost.measure.steps`     — the one step loop and the run summary
* :mod:`mlcost.measure.train` / :mod:`mlcost.measure.serve` — the training and serving steps
* :mod:`mlcost.measure.contract`  — the ``--json`` contract
"""

from __future__ import annotations

from mlcost.measure.contract import SERVE_SUMMARY_KEYS, SUMMARY_KEYS, run_summary
from mlcost.measure.facts import (
    CostInputs,
    catalog_device_for,
    cost_inputs,
    mfu_peak,
    money_metrics,
    predict_train,
)
from mlcost.measure.lifecycle import RunInterrupted, RunLifecycle, as_meter_set, classify_exception
from mlcost.measure.options import (
    CHECKPOINT_EVERY_STEPS,
    CostOptions,
    RunFacts,
    ServeOptions,
    ServeShape,
    TrainOptions,
    TrainShape,
    grad_accum_steps,
)
from mlcost.measure.serve import run_serving
from mlcost.measure.train import resolve_device, run_training

__all__ = [
    "CHECKPOINT_EVERY_STEPS",
    "SERVE_SUMMARY_KEYS",
    "SUMMARY_KEYS",
    "CostInputs",
    "CostOptions",
    "RunFacts",
    "RunInterrupted",
    "RunLifecycle",
    "ServeOptions",
    "ServeShape",
    "TrainOptions",
    "TrainShape",
    "as_meter_set",
    "catalog_device_for",
    "classify_exception",
    "cost_inputs",
    "grad_accum_steps",
    "mfu_peak",
    "money_metrics",
    "predict_train",
    "resolve_device",
    "run_serving",
    "run_summary",
    "run_training",
]
