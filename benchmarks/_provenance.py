"""Provenance header printed by every benchmark: host, CPU, versions, date."""

from __future__ import annotations

import datetime as _dt
import os
import platform


def header(title: str) -> str:
    import numpy

    import mlcost

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"# {title}\n# host {platform.node()} | {cpu} | {os.cpu_count()} logical CPUs | Python {platform.python_version()}"
        f" | numpy {numpy.__version__} | mlcost {mlcost.__version__} | {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC"
    )
