"""A shared rich console factory (tests render to a StringIO console)."""

from __future__ import annotations

from typing import Any


def make_console(**kwargs: Any) -> Any:
    from rich.console import Console

    return Console(**kwargs)
