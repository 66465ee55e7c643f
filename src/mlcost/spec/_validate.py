"""Small validation helpers shared by the spec dataclasses."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

from mlcost.errors import SpecError, did_you_mean
from mlcost.spec import validate


def api_name(owner: str, name: str, context: str | None = None) -> str:
    """How a Python caller names a field: the class and the keyword argument it passed,
    ``TrainJob(micro_batch=...)`` (with ``context``: ``ModelSpec(d_model=...) of model 'x'``). The CLI
    checks its flags with the same rules (:mod:`mlcost.spec.validate`) under the flag's name first."""
    return f"{owner}({name}=...)" + (f" of {context}" if context else "")


def check_positive_int(
    owner: str, name: str, value: Any, *, allow_zero: bool = False, context: str | None = None
) -> None:
    """``value`` is an ``int`` >= 1 (>= 0 with ``allow_zero``): :func:`mlcost.spec.validate.positive_int`
    / ``nonneg_int`` with the field's API name."""
    rule = validate.nonneg_int if allow_zero else validate.positive_int
    rule(value, api_name(owner, name, context), exact=True)


def check_positive(
    owner: str, name: str, value: Any, *, allow_zero: bool = False, context: str | None = None
) -> None:
    """``value`` is a finite number > 0 (>= 0 with ``allow_zero``): :func:`mlcost.spec.validate.positive_float`
    / ``nonneg_float`` with the field's API name (no upper bound beyond finiteness)."""
    rule = validate.nonneg_float if allow_zero else validate.positive_float
    rule(value, api_name(owner, name, context), maximum=math.inf, exact=True)


def check_choice(
    owner: str, name: str, value: Any, choices: Iterable[str], *, context: str | None = None
) -> None:
    """``value`` is one of ``choices``, spelled exactly (:func:`mlcost.spec.validate.choice`, which matches
    case-insensitively, suggests the canonical spelling)."""
    options = list(choices)
    what = api_name(owner, name, context)
    canonical = validate.choice(value, what, options)
    if canonical != value:
        raise SpecError(
            f"{what} must be one of {', '.join(options)}, got {value!r}", hint=f"did you mean {canonical!r}?"
        )


def from_dict_strict(cls: type, data: dict[str, Any]) -> Any:
    """Build a dataclass from a dict, rejecting unknown keys with a suggestion."""
    if not isinstance(data, dict):
        raise SpecError(f"{cls.__name__} must be given as a mapping, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in names]
    if unknown:
        key = unknown[0]
        raise SpecError(
            f"unknown field {key!r} for {cls.__name__}",
            hint=did_you_mean(key, sorted(names)) or f"allowed: {', '.join(sorted(names))}",
        )
    try:
        return cls(**data)
    except TypeError as exc:
        raise SpecError(f"cannot build {cls.__name__}: {exc}") from None
