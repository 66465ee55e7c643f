"""mlcost.plan.allocate: brute force on small integer problems, closed forms for LPs, duals, conflicts."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlcost.errors import SpecError
from mlcost.plan.allocate import AllocationProblem, Constraints, Resource, solve_allocation

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "allocate"


def problem(resources: list[dict], objective: str = "min_cost", **constraints: float) -> AllocationProblem:
    return AllocationProblem.from_dict(
        {"objective": objective, "resource": resources, "constraints": constraints}
    )


# ------------------------------------------------------------------------------------- brute force


def brute_force(pr: AllocationProblem) -> float | None:
    """Optimal objective by enumerating every integer allocation (all resources integer).

    A resource without max_units is enumerated up to max(l_i, ceil(P / p_i)): a feasible point exists iff one
    exists in that box (more units only help the floor). Use it only for feasibility when such bounds exist
    and the objective is max_performance."""
    k = pr.constraints
    P = k.min_performance or 0.0
    highs = []
    for r in pr.resources:
        hi = r.max_units
        if hi is None:
            hi = max(r.min_units, math.ceil(P / r.performance) if r.performance > 0 else 0)
        highs.append(math.floor(hi))
    ranges = [np.arange(math.ceil(r.min_units), hi + 1) for r, hi in zip(pr.resources, highs, strict=True)]
    X = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, len(ranges)).astype(float)
    c = np.array([r.unit_cost for r in pr.resources])
    p = np.array([r.performance for r in pr.resources])
    cost, perf, units = X @ c, X @ p, X.sum(axis=1)
    ok = np.ones(len(X), dtype=bool)
    if k.min_performance is not None:
        ok &= perf >= k.min_performance - 1e-9
    if k.max_units is not None:
        ok &= units <= k.max_units + 1e-9
    if k.max_cost is not None:
        ok &= cost <= k.max_cost + 1e-9
    if not ok.any():
        return None
    return float(cost[ok].min()) if pr.objective == "min_cost" else float(perf[ok].max())


@st.composite
def small_integer_problems(draw: st.DrawFn) -> AllocationProblem:
    n = draw(st.integers(1, 3))
    resources = []
    for i in range(n):
        lo = draw(st.integers(0, 3))
        resources.append(
            Resource(
                name=f"r{i}",
                unit_cost=float(draw(st.integers(0, 10))),
                performance=float(draw(st.integers(0, 10))),
                integer=True,
                min_units=float(lo),
                max_units=float(draw(st.integers(lo, 6))),
            )
        )
    optional = st.none() | st.integers(0, 1)  # None, or draw a value below
    constraints = Constraints(
        min_performance=None if draw(optional) is None else float(draw(st.integers(0, 80))),
        max_units=None if draw(optional) is None else float(draw(st.integers(0, 12))),
        max_cost=None if draw(optional) is None else float(draw(st.integers(0, 100))),
    )
    objective = draw(st.sampled_from(["min_cost", "max_performance"]))
    return AllocationProblem(resources=tuple(resources), constraints=constraints, objective=objective)


def drop_all_but(pr: AllocationProblem, keep: set[str]) -> AllocationProblem:
    """The problem with only the constraints named in ``keep`` (x >= 0 and integrality stay)."""
    k = pr.constraints
    constraints = Constraints(
        **{
            f: getattr(k, f) if f"constraints.{f}" in keep else None
            for f in ("min_performance", "max_units", "max_cost")
        }
    )
    resources = tuple(
        dataclasses.replace(
            r,
            min_units=r.min_units if f"resource.{r.name}.min_units" in keep else 0.0,
            max_units=r.max_units if f"resource.{r.name}.max_units" in keep else None,
        )
        for r in pr.resources
    )
    return dataclasses.replace(pr, resources=resources, constraints=constraints)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_integer_problems())
def test_integer_problems_equal_brute_force(pr: AllocationProblem) -> None:
    expected = brute_force(pr)
    result = solve_allocation(pr)
    if expected is None:
        assert result.status == "infeasible"
        assert result.allocation is None and result.conflicting_constraints
        return
    assert result.status == "optimal"
    assert result.objective == pytest.approx(expected, abs=1e-6)
    assert result.allocation is not None
    for r in pr.resources:
        x = result.allocation[r.name]
        assert x == round(x)
        assert r.min_units <= x <= (r.max_units or math.inf)
    for b in result.binding_constraints:
        if b.step_change is not None:  # z*(b_k + 1) - z*(b_k), checked against brute force too
            bumped = brute_force(pr.with_limit(b.constraint, b.limit + 1))
            assert bumped is not None
            assert b.step_change == pytest.approx(bumped - expected, abs=1e-6)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_integer_problems())
def test_infeasible_problems_explain_themselves(pr: AllocationProblem) -> None:
    result = solve_allocation(pr)
    if result.status == "optimal":
        return
    # The conflicting set is irreducible: infeasible together, feasible without any one of them.
    K = set(result.conflicting_constraints)
    assert brute_force(drop_all_but(pr, K)) is None
    all_keys = K | {rx.constraint for rx in result.relaxations}
    assert all_keys == K
    for key in K:
        assert brute_force(drop_all_but(pr, K - {key})) is not None
    # Each relaxation alone makes the problem feasible, and is the smallest such change (activities are integers).
    for rx in result.relaxations:
        assert rx.required == round(rx.required)
        assert brute_force(pr.with_limit(rx.constraint, rx.required)) is not None
        floor = rx.constraint.endswith(("min_performance", "min_units"))
        assert (rx.required < rx.current) if floor else (rx.required > rx.current)
        just_short = rx.required + (0.5 if floor else -0.5)
        if just_short >= 0:
            assert brute_force(pr.with_limit(rx.constraint, just_short)) is None


# --------------------------------------------------------------------------------------- closed forms


def test_single_resource_lp_closed_form() -> None:
    # min 3 x  s.t.  2 x >= 10  ->  x = 5, cost 15, dual of the floor c/p = 1.5
    result = solve_allocation(
        problem([{"name": "gpu", "unit_cost": 3.0, "performance": 2.0}], min_performance=10)
    )
    assert result.status == "optimal" and result.dual_basis == "lp"
    assert result.allocation == {"gpu": pytest.approx(5.0)}
    assert result.objective == pytest.approx(15.0)
    (floor,) = result.binding_constraints
    assert floor.constraint == "constraints.min_performance" and floor.tight
    assert floor.dual == pytest.approx(1.5)
    assert floor.meaning == "raising the performance floor by 1 raises cost by 1.5"


def test_fractional_knapsack_max_performance() -> None:
    # max perf under a budget: fill by performance per dollar (b: 3/1, a: 4/2, c: 1/1) until B = 10 runs out.
    resources = [
        {"name": "a", "unit_cost": 2.0, "performance": 4.0, "max_units": 2},
        {"name": "b", "unit_cost": 1.0, "performance": 3.0, "max_units": 3},
        {"name": "c", "unit_cost": 1.0, "performance": 1.0, "max_units": 100},
    ]
    result = solve_allocation(problem(resources, "max_performance", max_cost=10.0))
    assert result.allocation == {"a": pytest.approx(2), "b": pytest.approx(3), "c": pytest.approx(3)}
    assert result.objective == pytest.approx(8 + 9 + 3)
    duals = {b.constraint: b.dual for b in result.binding_constraints}
    assert duals["constraints.max_cost"] == pytest.approx(1.0)  # the marginal dollar buys c: 1 perf per $
    assert duals["resource.b.max_units"] == pytest.approx(3 - 1)  # one more b displaces $1 of c
    assert duals["resource.a.max_units"] == pytest.approx(4 - 2)


def test_min_cost_without_floor_takes_the_minimum_units() -> None:
    result = solve_allocation(
        problem(
            [
                {"name": "a", "unit_cost": 2.0, "performance": 1.0, "min_units": 3},
                {"name": "b", "unit_cost": 1.0, "performance": 1.0},
            ]
        )
    )
    assert result.allocation == {"a": pytest.approx(3), "b": pytest.approx(0)}
    assert result.objective == pytest.approx(6.0)
    assert [b.constraint for b in result.binding_constraints] == ["resource.a.min_units"]


MIXED = [
    {"name": "h100", "unit_cost": 4.0, "performance": 3.0, "max_units": 8},
    {"name": "a100", "unit_cost": 2.0, "performance": 1.0},
    {"name": "spot", "unit_cost": 1.0, "performance": 0.6},
]


@pytest.mark.parametrize("objective", ["min_cost", "max_performance"])
def test_duals_match_perturbation(objective: str) -> None:
    limits = {"min_performance": 40.0, "max_units": 30.0, "max_cost": 70.0}
    if objective == "max_performance":
        limits = {"max_units": 30.0, "max_cost": 61.0}
    pr = problem(MIXED, objective, **limits)
    base = solve_allocation(pr)
    assert base.objective is not None and base.binding_constraints
    eps = 1e-3
    for b in base.binding_constraints:
        assert b.dual is not None
        moved = solve_allocation(pr.with_limit(b.constraint, b.limit + eps))
        assert moved.objective is not None
        assert (moved.objective - base.objective) / eps == pytest.approx(b.dual, abs=1e-6), b.constraint


def test_min_cost_duals_in_words() -> None:
    result = solve_allocation(problem(MIXED, min_performance=40.0, max_units=30.0))
    meanings = {b.constraint: b.meaning for b in result.binding_constraints}
    assert meanings == {
        "constraints.min_performance": "raising the performance floor by 1 raises cost by 2.5",
        "constraints.max_units": "raising the total-unit cap by 1 lowers cost by 0.5",
        "resource.h100.max_units": "raising h100 max_units by 1 lowers cost by 3",
    }


def test_mixed_integer_reports_fixed_lp_duals_and_step_change() -> None:
    resources = [dict(r, integer=True) if r["name"] != "spot" else r for r in MIXED]
    result = solve_allocation(problem(resources, min_performance=40.0, max_units=30.0))
    assert result.dual_basis == "lp_with_integers_fixed" and result.integer
    assert result.allocation == {"h100": 8, "a100": 7, "spot": pytest.approx(15)}
    by_key = {b.constraint: b for b in result.binding_constraints}
    assert by_key["resource.h100.max_units"].dual is None  # bound of a fixed integer: no dual
    assert by_key["resource.h100.max_units"].step_change == pytest.approx(-3.0)
    assert by_key["constraints.min_performance"].dual == pytest.approx(1 / 0.6)  # only spot moves
    assert "with the integer units held fixed" in by_key["constraints.min_performance"].meaning


def test_all_integer_has_no_duals() -> None:
    gpu = [{"name": "g", "unit_cost": 3.0, "performance": 2.0, "integer": True}]
    result = solve_allocation(problem(gpu, min_performance=10))
    assert result.dual_basis == "none"
    assert result.allocation == {"g": 5}
    (floor,) = result.binding_constraints
    assert floor.tight and floor.dual is None
    assert floor.step_change == pytest.approx(3.0)  # floor 11 needs a sixth unit
    assert floor.meaning == "re-solving with the performance floor raised by 1 raises cost by 3"
    # with slack (floor 9 -> 10 delivered) nothing binds
    assert solve_allocation(problem(gpu, min_performance=9)).binding_constraints == ()


def test_unbounded_max_performance_is_an_error() -> None:
    with pytest.raises(SpecError, match=r"unbounded.*gpu") as info:
        solve_allocation(problem([{"name": "gpu", "unit_cost": 1.0, "performance": 2.0}], "max_performance"))
    assert "max_cost" in str(info.value)
    # a budget bounds it, unless the resource is free
    assert solve_allocation(
        problem([{"name": "gpu", "unit_cost": 1.0, "performance": 2.0}], "max_performance", max_cost=5)
    ).objective == pytest.approx(10)
    with pytest.raises(SpecError, match="unbounded"):
        solve_allocation(
            problem([{"name": "gpu", "unit_cost": 0.0, "performance": 2.0}], "max_performance", max_cost=5)
        )


# ---------------------------------------------------------------------------------------- conflicts


def relaxations(pr: AllocationProblem) -> dict[str, tuple[float, str]]:
    result = solve_allocation(pr)
    assert result.status == "infeasible"
    return {r.constraint: (r.required, r.message) for r in result.relaxations}


GPU = {"name": "gpu", "unit_cost": 1000.0, "performance": 2.0, "integer": True}


def test_floor_against_total_units() -> None:
    rx = relaxations(problem([GPU], min_performance=1000.0, max_units=100))
    assert rx["constraints.max_units"] == (
        500,
        "the performance floor of 1000 is reachable only with at least 500 units in total; raise max_units from 100 to 500",
    )
    assert rx["constraints.min_performance"][0] == 200
    assert "at most 200 performance is possible" in rx["constraints.min_performance"][1]


def test_floor_against_budget() -> None:
    rx = relaxations(problem([GPU], min_performance=1000.0, max_cost=50000.0))
    assert rx["constraints.max_cost"] == (
        500000,
        "the performance floor of 1000 costs at least 500000; raise max_cost from 50000 to 500000",
    )
    assert rx["constraints.min_performance"][0] == 100


def test_floor_against_resource_limit() -> None:
    rx = relaxations(problem([dict(GPU, max_units=64)], min_performance=1000.0))
    assert rx["resource.gpu.max_units"] == (
        500,
        "the performance floor of 1000 is reachable only with at least 500 units of gpu; raise its max_units from 64 to 500",
    )
    assert rx["constraints.min_performance"][0] == 128


def test_minimum_units_against_caps() -> None:
    pr = problem(
        [dict(GPU, min_units=10), {"name": "cpu", "unit_cost": 1.0, "performance": 0.1, "min_units": 5}],
        max_units=12,
    )
    result = solve_allocation(pr)
    assert set(result.conflicting_constraints) == {
        "constraints.max_units",
        "resource.gpu.min_units",
        "resource.cpu.min_units",
    }
    rx = {r.constraint: r for r in result.relaxations}
    assert rx["resource.gpu.min_units"].required == 7
    assert rx["resource.gpu.min_units"].message == (
        "with the other limits at most 7 units of gpu fit; lower its min_units from 10 to 7"
    )
    assert rx["resource.cpu.min_units"].required == 2
    assert rx["constraints.max_units"].message.startswith(
        "the other constraints (at least 10 gpu units, at least 5 cpu units)"
    )


def test_floor_no_resource_can_meet() -> None:
    result = solve_allocation(
        problem([{"name": "idle", "unit_cost": 1.0, "performance": 0.0}], min_performance=5)
    )
    assert result.message == "infeasible: the performance floor of 5 cannot hold"
    (rx,) = result.relaxations
    assert (rx.constraint, rx.required) == ("constraints.min_performance", 0)


def test_two_separate_conflicts_need_more_than_one_change() -> None:
    # floor vs budget, and the gpu minimum vs the unit cap: no single change suffices
    pr = problem([dict(GPU, min_units=10)], min_performance=1000.0, max_cost=50000.0, max_units=5)
    result = solve_allocation(pr)
    assert result.status == "infeasible"
    assert result.relaxations == ()
    assert "no single change suffices" in result.message


# ------------------------------------------------------------------------------------------ parsing


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


OK_TOML = """
objective = "min_cost"
[[resource]]
name = "gpu"
unit_cost = 1000.0
performance = 2.0
integer = true
max_units = 64
[constraints]
min_performance = 100.0
"""


def test_toml_and_yaml_parse_the_same(tmp_path: Path) -> None:
    toml = AllocationProblem.from_file(write(tmp_path, "a.toml", OK_TOML))
    yaml = AllocationProblem.from_file(
        write(
            tmp_path,
            "a.yml",
            "objective: min_cost\nresource:\n  - {name: gpu, unit_cost: 1000.0, performance: 2.0, integer: true, max_units: 64}\n"
            "constraints: {min_performance: 100.0}\n",
        )
    )
    assert toml == yaml
    assert toml.resources[0] == Resource(
        name="gpu", unit_cost=1000.0, performance=2.0, integer=True, max_units=64.0
    )


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda s: s.replace("unit_cost =", "unit_cots ="),
            r"unknown key in resource\[1\]: 'unit_cots' \(did you mean 'unit_cost'\?\)",
        ),
        (
            lambda s: s.replace("[constraints]", "[constraints]\nmax_budget = 3"),
            r"unknown key in constraints: 'max_budget'",
        ),
        (
            lambda s: s.replace("[[resource]]", "[[resources]]"),
            r"unknown key 'resources' \(did you mean 'resource'\?\)",
        ),
        (
            lambda s: s.replace("1000.0", "-1000.0"),
            r"resource\[1\] \(gpu\)\.unit_cost must be >= 0, got -1000",
        ),
        (lambda s: s.replace('name = "gpu"', ""), r"resource\[1\]\.name is missing"),
        (
            lambda s: s + s[s.index("[[resource]]") : s.index("[constraints]")],
            r"resource\[2\]\.name 'gpu' is a duplicate",
        ),
        (
            lambda s: s.replace("max_units = 64", "max_units = 4\nmin_units = 8"),
            r"min_units \(8\) is above max_units \(4\)",
        ),
        (lambda s: s.replace("performance = 2.0", ""), r"\(gpu\)\.performance is missing"),
        (lambda s: s.replace("integer = true", 'integer = "yes"'), r"integer must be true or false"),
        (
            lambda s: s.replace('"min_cost"', '"min_costs"'),
            r"objective must be one of .* \(did you mean 'min_cost'\?\)",
        ),
        (lambda s: s.replace("max_units = 64", "max_units = 64 64"), r"invalid TOML"),
    ],
)
def test_bad_toml_files(tmp_path: Path, edit, match: str) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "bad.toml", edit(OK_TOML))
    with pytest.raises(SpecError, match=match) as info:
        AllocationProblem.from_file(path)
    assert str(path) in str(info.value)


def test_bad_yaml_and_paths(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"a\.yaml: invalid YAML at line 3, column 1: expected "):
        AllocationProblem.from_file(write(tmp_path, "a.yaml", "resource:\n  - name: [gpu\n"))
    with pytest.raises(SpecError, match="no resources given"):
        AllocationProblem.from_file(write(tmp_path, "b.yaml", "objective: min_cost\n"))
    with pytest.raises(SpecError, match="expected a mapping"):
        AllocationProblem.from_file(write(tmp_path, "c.yaml", "- 1\n- 2\n"))
    with pytest.raises(SpecError, match=r"suffix '\.json'"):
        AllocationProblem.from_file(write(tmp_path, "d.json", "{}"))
    with pytest.raises(SpecError, match="cannot read"):
        AllocationProblem.from_file(tmp_path / "missing.toml")


# ----------------------------------------------------------------------------------------- examples


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.*")), ids=lambda p: p.name)
def test_shipped_examples_solve(path: Path) -> None:
    result = solve_allocation(AllocationProblem.from_file(path))
    assert result.status == ("infeasible" if "infeasible" in path.name else "optimal")
    if result.status == "infeasible":
        assert result.relaxations
