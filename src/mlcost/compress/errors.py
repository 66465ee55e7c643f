"""The error type of ``mlcost compress``: bad input, exit code 2, one line naming the flag and the fix."""

from __future__ import annotations

from mlcost.errors import MlcostError


class CompressError(MlcostError):
    """A model, evaluation file, method or quality target that ``mlcost compress`` cannot use."""
