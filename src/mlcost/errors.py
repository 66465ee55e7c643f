"""Exception classes. Every error a user can cause names the problem and how to fix it.

The CLI turns any :class:`MlcostError` into a one-line message on stderr and exit code 2, never a
traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable


def close_matches(name: object, known: Iterable[str], *, n: int = 1, cutoff: float = 0.6) -> list[str]:
    """The known names closest to ``name`` (``difflib.get_close_matches``), best first."""
    return difflib.get_close_matches(str(name), list(known), n=n, cutoff=cutoff)


def did_you_mean(
    name: object,
    known: Iterable[str],
    *,
    n: int = 1,
    cutoff: float = 0.6,
    end: str = "",
    show: Callable[[str], str] = repr,
) -> str:
    """``"did you mean 'x'?"`` (+ ``end``) for the closest known names, or ``""`` when none is close: the one
    "did you mean" of mlcost's messages."""
    close = close_matches(name, known, n=n, cutoff=cutoff)
    return f"did you mean {', '.join(show(c) for c in close)}?{end}" if close else ""


class MlcostError(Exception):
    """Base class for errors caused by input or environment, with an optional fix hint."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class SpecError(MlcostError):
    """A model, job or cluster specification is invalid or inconsistent."""


class CatalogError(MlcostError):
    """A catalog file (devices, prices, carbon, model presets) is malformed or out of range."""


class UnknownNameError(MlcostError):
    """A name (model preset, device, region, ...) is not in the catalog."""

    def __init__(self, kind: str, name: str, known: Iterable[str], *, extra_hint: str | None = None) -> None:
        known_list = sorted(set(known))
        close = close_matches(name, known_list, n=3, cutoff=0.5)
        if not close:
            close = [k for k in known_list if name.lower() in k.lower()][:3]
        hint = did_you_mean(close[0], close, n=3, cutoff=0.0) if close else None
        listing = f"known: {', '.join(known_list[:12])}{', ...' if len(known_list) > 12 else ''}"
        hint = f"{hint} {listing}" if hint else listing
        if extra_hint:
            hint = f"{hint}; {extra_hint}"
        super().__init__(f"unknown {kind} {name!r}", hint=hint)
        self.kind = kind
        self.name = name
        self.suggestions = close


class MissingDependencyError(MlcostError):
    """An optional dependency (torch, transformers, nvidia-ml-py, ...) is not installed."""

    def __init__(self, package: str, feature: str, extra: str | None = None) -> None:
        how = f"pip install 'mlcost[{extra}]'" if extra else f"pip install {package}"
        if package == "torch":
            how = "pip install torch==2.13.0 (a CPU build; plain 'pip install torch' pulls a multi-GB CUDA build)"
        super().__init__(f"{feature} needs {package}, which is not installed", hint=how)
        self.package = package


class LedgerError(MlcostError):
    """The run ledger cannot be opened or written."""


class InfeasibleError(MlcostError):
    """A plan or allocation has no feasible solution; the message explains which constraints conflict."""


def require(module: str, feature: str, extra: str | None = None):  # type: ignore[no-untyped-def]
    """Import an optional dependency or raise :class:`MissingDependencyError` with the install command."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise MissingDependencyError(package, feature, extra) from exc
