"""allocate at scale (issue #9 item 3): rows linear in n, the time limit and the MIP gap, bounded
step-change re-solves. Timing and memory figures are printed by benchmarks/allocate_scale.py."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from mlcost.cli.main import main
from mlcost.errors import SpecError
from mlcost.plan import allocate as A
from mlcost.plan.allocate import AllocationProblem, Constraints, Resource, solve_allocation


def _problem(n: int, integer: bool, floor_share: float = 0.25) -> AllocationProblem:
    rng = np.random.default_rng(1)
    cost = rng.uniform(1, 10, n)
    perf = cost * rng.uniform(0.5, 1.5, n)
    return AllocationProblem(
        resources=tuple(
            Resource(
                name=f"r{i}",
                unit_cost=float(cost[i]),
                performance=float(perf[i]),
                integer=integer,
                max_units=20.0,
            )
            for i in range(n)
        ),
        constraints=Constraints(min_performance=float(perf.sum()) * 20 * floor_share, max_units=20.0 * n),
    )


def _peak_bytes(n: int) -> int:
    problem = _problem(n, integer=False)
    solve_allocation(_problem(3, integer=False))  # imports outside the measurement
    tracemalloc.start()
    solve_allocation(problem)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return int(peak)


def test_memory_grows_linearly() -> None:
    small, large = _peak_bytes(500), _peak_bytes(4000)
    # 8x the resources: linear growth is ~8x; the dense np.eye rows of old grew 64x (n^2) and more
    assert large / small < 16, (small, large)
    assert large / 4000 < 4000  # bytes per resource: a few hundred, not n * 8


def test_no_dense_identity_rows() -> None:
    rows = A._rows(_problem(50, integer=False), np.ones(50), np.ones(50))
    bounds = [r for r in rows if r.index is not None]
    assert bounds and all(r.a is None for r in bounds)
    assert all(r.a is not None and r.a.shape == (50,) for r in rows if r.index is None)


def _fake_milp(status: int, with_x: bool) -> Any:
    def milp(c: np.ndarray, **_: Any) -> SimpleNamespace:
        x = np.full(len(c), 20.0) if with_x else None
        return SimpleNamespace(status=status, x=x, mip_gap=0.0123 if with_x else np.inf, message="time limit")

    return milp


def test_time_limit_returns_the_incumbent_and_the_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    import scipy.optimize

    monkeypatch.setattr(scipy.optimize, "milp", _fake_milp(1, with_x=True))  # HiGHS stopped by its time limit
    result = solve_allocation(_problem(30, integer=True), time_limit_s=5.0)
    assert result.status == "time_limit" and result.mip_gap == pytest.approx(0.0123)
    assert (
        result.time_limit_s == 5.0
        and "time limit of 5 s reached" in result.message
        and "MIP gap 0.0123" in result.message
    )
    assert result.allocation is not None and all(v == 20.0 for v in result.allocation.values())
    assert all(
        "not re-solved" in b.meaning
        for b in result.binding_constraints
        if b.constraint.startswith("resource.")
    )


def test_time_limit_without_an_allocation_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import scipy.optimize

    monkeypatch.setattr(scipy.optimize, "milp", _fake_milp(1, with_x=False))
    with pytest.raises(SpecError, match="time limit of 5 s before finding any allocation"):
        solve_allocation(_problem(30, integer=True), time_limit_s=5.0)


def test_cli_time_limit_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        '[[resource]]\nname = "a"\nunit_cost = 2\nperformance = 3\ninteger = true\nmax_units = 10\n'
        "[constraints]\nmin_performance = 10\n"
    )
    assert main(["allocate", str(path), "--time-limit", "30s", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "optimal" and data["time_limit_s"] == 30.0
    assert data["mip_gap"] is not None and data["mip_gap"] <= 1e-4 and data["step_changes_skipped"] == 0
    assert main(["allocate", str(path), "--time-limit", "30"]) == 2
    assert "--time-limit needs a unit" in capsys.readouterr().err


def test_step_change_resolves_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = A._solve

    def counting(*args: Any, **kw: Any) -> Any:
        calls["n"] += 1
        return real(*args, **kw)

    monkeypatch.setattr(A, "_solve", counting)
    result = solve_allocation(_problem(40, integer=True, floor_share=0.8))
    bound_rows = [b for b in result.binding_constraints if b.constraint.startswith("resource.")]
    assert len(bound_rows) > A.MAX_STEP_RESOLVES
    assert calls["n"] <= 1 + 3 + A.MAX_STEP_RESOLVES  # the solve, global rows, capped bound re-solves
    assert result.step_changes_skipped == len(bound_rows) - sum(
        "not re-solved" not in b.meaning for b in bound_rows
    )
