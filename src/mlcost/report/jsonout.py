"""JSON output: one object per command, numbers as plain floats, NaN/inf as null."""

from __future__ import annotations

import json
import math
from typing import Any


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(obj: Any, indent: int | None = 2) -> str:
    """Serialise ``obj`` (dicts, lists, numpy scalars) as strict JSON."""
    return json.dumps(_clean(obj), indent=indent, allow_nan=False)
