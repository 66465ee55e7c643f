"""Reading and validating ``mlcost allocate`` input files (TOML or YAML).

Every error is a :class:`~mlcost.errors.SpecError` that names the file, the key and how to fix it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mlcost.errors import SpecError, did_you_mean
from mlcost.spec.validate import read_text_file

TOP_KEYS = ("objective", "resource", "constraints")
RESOURCE_KEYS = ("name", "unit_cost", "performance", "integer", "min_units", "max_units")
CONSTRAINT_KEYS = ("min_performance", "max_units", "max_cost")
OBJECTIVES = ("min_cost", "max_performance")


def load_mapping(path: Path) -> dict[str, Any]:
    """Parse a .toml, .yaml or .yml file into a mapping; SpecError on any read or parse failure."""
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise SpecError(
            f"{path}: cannot read allocation file with suffix {suffix or '(none)'!r}",
            hint="use a .toml, .yaml or .yml file",
        )
    text = read_text_file(path, "allocation file")
    if suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"{path}: invalid TOML: {exc}", hint="fix the syntax at that line") from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            where = ""
            mark = getattr(exc, "problem_mark", None)
            if mark is not None:
                where = f" at line {mark.line + 1}, column {mark.column + 1}"
            problem = getattr(exc, "problem", None) or "syntax error"
            raise SpecError(f"{path}: invalid YAML{where}: {problem}", hint="fix the syntax there") from None
    if not isinstance(data, dict):
        raise SpecError(
            f"{path}: expected a mapping at the top level, got {type(data).__name__}",
            hint="start the file with 'objective = \"min_cost\"' and [[resource]] tables",
        )
    return data


def check_keys(source: str, where: str, data: dict[str, Any], allowed: tuple[str, ...]) -> None:
    """Reject unknown keys, suggesting the closest allowed one."""
    for key in data:
        if key not in allowed:
            hint = did_you_mean(key, allowed, cutoff=0.5) or f"allowed keys: {', '.join(allowed)}"
            raise SpecError(f"{source}: unknown key {where}{key!r}", hint=hint)


def number(source: str, key: str, value: Any, *, required: bool = False) -> float | None:
    """A finite, non-negative number (or None when absent and optional)."""
    if value is None:
        if required:
            raise SpecError(
                f"{source}: {key} is missing", hint=f"add {key.rsplit('.', 1)[-1]} = <number >= 0>"
            )
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(
            f"{source}: {key} must be a finite number, got {value!r}", hint="write a plain number"
        )
    if value < 0:
        raise SpecError(f"{source}: {key} must be >= 0, got {value!r}", hint="use a non-negative value")
    return float(value)


def flag(source: str, key: str, value: Any) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise SpecError(f"{source}: {key} must be true or false, got {value!r}", hint="write true or false")
    return value


def objective(source: str, value: Any) -> str:
    if value is None:
        return "min_cost"
    if value not in OBJECTIVES:
        hint = did_you_mean(value, OBJECTIVES, cutoff=0.4) or f"use one of {', '.join(OBJECTIVES)}"
        raise SpecError(
            f"{source}: objective must be one of {', '.join(OBJECTIVES)}, got {value!r}", hint=hint
        )
    return str(value)
