"""Size and build time of `mlcost report` for a plan and a 100-run ledger (target: < 5 MB, < 2 s).

Builds the fixture ledger with real RunRecords (tests/report/conftest.py), then times the whole command
in-process (reading the plan, estimating plan #1, reading the ledger, rendering, writing) 5 times.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))

from _provenance import header
from tests.report.conftest import make_ledger

from mlcost.cli.main import main


def run(argv: list[str]) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 0
    return buf.getvalue()


def bench() -> None:
    print(header("mlcost report build: plan + 100-run ledger"))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        plan = tmp / "plan.json"
        plan.write_text(run(["plan", "train", "--model", "llama-3.1-8b", "--tokens", "1T", "--json"]))
        url = make_ledger(tmp / "ledger.db", 100)
        out = tmp / "report.html"
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            run(["report", str(plan), "--ledger", url, "-o", str(out)])
            times.append(time.perf_counter() - t0)
        size = out.stat().st_size
        print(
            f"size: {size:,} bytes ({size / 1e6:.2f} MB; target < 5 MB) -> {'PASS' if size < 5e6 else 'FAIL'}"
        )
        print(
            f"build time over 5 runs: first {times[0]:.2f} s (includes compressing plotly.js once), "
            f"median {statistics.median(times):.2f} s, max {max(times):.2f} s (target < 2 s) -> "
            f"{'PASS' if max(times) < 2.0 else 'FAIL'}"
        )


if __name__ == "__main__":
    bench()
