"""Model-level cuts with quality next to cost: quantize, prune and distill a model, measure each variant on
this machine (interleaved, with intervals), price it and say which one is cheapest at the quality needed.

Needs the ``compress`` extra (torch, transformers, scikit-learn, onnxruntime, ...); nothing here is imported
by the core layers. Modules: ``models`` (loading), ``examples`` (built-in models), ``tasks`` (metrics),
``quantize``, ``prune``, ``distill``, ``recipes`` (methods → variants, save/load), ``bench`` (speed, memory,
size), ``price``, ``choose`` (targets, verdicts, Pareto), ``records`` (ledger), ``pipeline`` (``compress``).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Options",
    "compress",
    "example_task",
    "from_module",
    "load_example",
    "load_model",
    "load_variant",
    "save_variant",
]


def __getattr__(name: str) -> Any:  # lazy: importing mlcost.compress stays cheap
    if name in ("Options", "compress"):
        from mlcost.compress import pipeline

        return getattr(pipeline, name)
    if name in ("from_module", "load_example", "load_model"):
        from mlcost.compress import models

        return getattr(models, name)
    if name == "example_task":
        from mlcost.compress import tasks

        return tasks.example_task
    if name in ("load_variant", "save_variant"):
        from mlcost.compress import recipes

        return getattr(recipes, name)
    raise AttributeError(name)
