"""Small validation helpers shared by the spec dataclasses."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

from mlcost.errors import SpecError, did_you_mean


def check_positive_int(owner: str, name: str, value: Any, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{owner}.{name} must be an integer, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise SpecError(f"{owner}.{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def check_positive(owner: str, name: str, value: Any, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(f"{owner}.{name} must be a finite number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise SpecError(f"{owner}.{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def check_choice(owner: str, name: str, value: Any, choices: Iterable[str]) -> None:
    options = list(choices)
    if value not in options:
        raise SpecError(
            f"{owner}.{name} must be one of {', '.join(options)}, got {value!r}",
            hint=did_you_mean(value, options, end=" "),
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
