"""mlcost: predict, plan, measure and cut the cost of training and serving neural models.

The notebook API (:mod:`mlcost.api`) is re-exported here lazily so that ``import mlcost`` stays fast and
torch-free: ``mlcost.estimate_train(model="llama-3.1-8b", device="h100-sxm", gpus=64, tokens="1T")``.
See docs/api.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Result", "__version__", "estimate_serve", "estimate_train", "plan_train", "runs"]

if TYPE_CHECKING:  # pragma: no cover
    from mlcost.api import Result, estimate_serve, estimate_train, plan_train, runs


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mlcost import api

        return getattr(api, name)
    raise AttributeError(f"module 'mlcost' has no attribute {name!r}")
