r"""General resource allocation as an LP/MILP (``mlcost allocate``), solved by HiGHS through scipy.

Notation
--------
Sets
    :math:`I` — resources (GPU pools, instance types, ...), :math:`Z \subseteq I` those bought in whole units.
Data (per resource :math:`i \in I`)
    :math:`c_i \ge 0` — unit cost (cost per unit, e.g. USD or USD/h; the same currency for every resource),
    :math:`p_i \ge 0` — performance contributed by one unit,
    :math:`l_i \ge 0` — ``min_units`` (0 by default), :math:`u_i` — ``max_units`` (:math:`+\infty` by default).
Data (global, each optional; an absent one is simply not a constraint)
    :math:`P` — ``min_performance`` (the performance floor), :math:`U` — ``max_units`` (total units),
    :math:`B` — ``max_cost`` (the budget).
Variables
    :math:`x_i` — units of resource :math:`i`; integer for :math:`i \in Z`, real otherwise.

Objective (``min_cost`` by default)
    min_cost:         :math:`\min_x \sum_i c_i x_i`
    max_performance:  :math:`\max_x \sum_i p_i x_i`

Constraints
    (floor)   :math:`\sum_i p_i x_i \ge P`
    (units)   :math:`\sum_i x_i \le U`
    (budget)  :math:`\sum_i c_i x_i \le B`
    (bounds)  :math:`l_i \le x_i \le u_i`,  :math:`x_i \in \mathbb{Z}` for :math:`i \in Z`.

Every constraint :math:`k` is a row :math:`a_k^\top x \gtrless b_k`. Its *dual* is reported as
:math:`\partial z^* / \partial b_k`, the change of the optimal objective :math:`z^*` per unit increase of the
limit :math:`b_k`. For an LP these are HiGHS marginals. A MILP has no duals: we fix :math:`x_i` for
:math:`i \in Z` at the optimum and re-solve the LP over the continuous :math:`x_i`, reporting the duals of that
restricted problem (``dual_basis = "lp_with_integers_fixed"``), or none at all when every variable is integer
(``dual_basis = "none"``); in both cases ``tight`` (slack :math:`\approx 0`) says which constraints bind.

Infeasibility. If no :math:`x` satisfies all rows, a deletion filter finds an irreducible conflicting set
:math:`K` (drop each row in turn; keep it only if the rest becomes feasible). For each :math:`k \in K` an
auxiliary problem over the other rows gives the smallest change of :math:`b_k` alone that restores feasibility:
for a floor (:math:`\ge`) :math:`b_k' = \max_x a_k^\top x`, for a cap (:math:`\le`) :math:`b_k' = \min_x a_k^\top x`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mlcost.errors import SpecError
from mlcost.plan import _allocate_parse as parse

__all__ = [
    "AllocationProblem",
    "AllocationResult",
    "BindingConstraint",
    "Constraints",
    "Relaxation",
    "Resource",
    "solve_allocation",
]

Objective = Literal["min_cost", "max_performance"]
DualBasis = Literal["lp", "lp_with_integers_fixed", "none"]

#: Most MILP re-solves for step changes of per-resource bounds in one problem (global rows always get one).
MAX_STEP_RESOLVES = 10
#: ... and at most this many resources × re-solves, so the extra work stays near one solve of the problem
#: (10 re-solves at n = 1,000; 2 at n = 5,000; 1 at n = 10,000).
STEP_RESOLVE_BUDGET = 10_000
#: ... and only while the re-solves have taken no longer than the solve itself, or this long. Units: s.
STEP_RESOLVE_MIN_S = 1.0
_TOL = 1e-7  # relative tolerance for "tight" (slack ~ 0) and for rounding integer units


# --------------------------------------------------------------------------------------------- input


@dataclass(frozen=True, kw_only=True)
class Resource:
    """One resource :math:`i`.

    Fields: ``name``; ``unit_cost`` :math:`c_i` (cost per unit, in the file's currency, e.g. USD or USD/h);
    ``performance`` :math:`p_i` (performance per unit, in the file's performance unit); ``integer``
    (:math:`i \\in Z`, default false); ``min_units`` :math:`l_i` (units, default 0); ``max_units`` :math:`u_i`
    (units, default unbounded).
    """

    name: str
    unit_cost: float
    performance: float
    integer: bool = False
    min_units: float = 0.0
    max_units: float | None = None


@dataclass(frozen=True, kw_only=True)
class Constraints:
    """Global constraints, each optional: ``min_performance`` :math:`P` (performance units),
    ``max_units`` :math:`U` (units), ``max_cost`` :math:`B` (currency)."""

    min_performance: float | None = None
    max_units: float | None = None
    max_cost: float | None = None


@dataclass(frozen=True, kw_only=True)
class AllocationProblem:
    """An allocation problem: resources, global constraints and an objective (``min_cost`` by default)."""

    resources: tuple[Resource, ...]
    constraints: Constraints = field(default_factory=Constraints)
    objective: Objective = "min_cost"

    @classmethod
    def from_file(cls, path: str | Path) -> AllocationProblem:
        """Read a .toml, .yaml or .yml file (format in docs/allocate.md)."""
        path = Path(path)
        return cls.from_dict(parse.load_mapping(path), source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<dict>") -> AllocationProblem:
        """Build from a mapping with keys ``objective``, ``resource`` (list) and ``constraints``."""
        if not isinstance(data, dict):
            raise SpecError(f"{source}: expected a mapping, got {type(data).__name__}")
        parse.check_keys(source, "", data, parse.TOP_KEYS)
        raw_resources = data.get("resource")
        if not isinstance(raw_resources, list) or not raw_resources:
            raise SpecError(
                f"{source}: no resources given",
                hint="add at least one [[resource]] table (TOML) or a 'resource:' list (YAML)",
            )
        resources: list[Resource] = []
        seen: set[str] = set()
        for k, raw in enumerate(raw_resources, start=1):
            where = f"resource[{k}]"
            if not isinstance(raw, dict):
                raise SpecError(f"{source}: {where} must be a table, got {type(raw).__name__}")
            parse.check_keys(source, f"in {where}: ", raw, parse.RESOURCE_KEYS)
            name = raw.get("name")
            if not isinstance(name, str) or not name.strip():
                raise SpecError(f"{source}: {where}.name is missing", hint='add name = "<a unique name>"')
            if name in seen:
                raise SpecError(
                    f"{source}: {where}.name {name!r} is a duplicate", hint="give each resource a unique name"
                )
            seen.add(name)
            where = f"resource[{k}] ({name})"
            unit_cost = parse.number(source, f"{where}.unit_cost", raw.get("unit_cost"), required=True)
            performance = parse.number(source, f"{where}.performance", raw.get("performance"), required=True)
            min_units = parse.number(source, f"{where}.min_units", raw.get("min_units")) or 0.0
            max_units = parse.number(source, f"{where}.max_units", raw.get("max_units"))
            if max_units is not None and min_units > max_units:
                raise SpecError(
                    f"{source}: {where}.min_units ({min_units:g}) is above max_units ({max_units:g})",
                    hint="lower min_units or raise max_units",
                )
            assert unit_cost is not None and performance is not None
            resources.append(
                Resource(
                    name=name,
                    unit_cost=unit_cost,
                    performance=performance,
                    integer=parse.flag(source, f"{where}.integer", raw.get("integer")),
                    min_units=min_units,
                    max_units=max_units,
                )
            )
        raw_constraints = data.get("constraints") or {}
        if not isinstance(raw_constraints, dict):
            raise SpecError(f"{source}: constraints must be a table, got {type(raw_constraints).__name__}")
        parse.check_keys(source, "in constraints: ", raw_constraints, parse.CONSTRAINT_KEYS)
        constraints = Constraints(
            **{
                key: parse.number(source, f"constraints.{key}", raw_constraints.get(key))
                for key in parse.CONSTRAINT_KEYS
            }
        )
        objective = parse.objective(source, data.get("objective"))
        return cls(resources=tuple(resources), constraints=constraints, objective=objective)  # type: ignore[arg-type]

    def with_limit(self, constraint: str, value: float) -> AllocationProblem:
        """A copy with one constraint's limit set to ``value`` (names as in :attr:`Relaxation.constraint`)."""
        kind, _, rest = constraint.partition(".")
        if kind == "constraints":
            return dataclasses.replace(
                self, constraints=dataclasses.replace(self.constraints, **{rest: value})
            )
        name, _, key = rest.rpartition(".")
        if key not in ("min_units", "max_units"):
            raise SpecError(f"unknown constraint {constraint!r}", hint="use a name from 'relaxations'")
        bound: dict[str, Any] = {key: value}
        resources = tuple(dataclasses.replace(r, **bound) if r.name == name else r for r in self.resources)
        return dataclasses.replace(self, resources=resources)


# -------------------------------------------------------------------------------------------- output


@dataclass(frozen=True, kw_only=True)
class BindingConstraint:
    """A constraint that binds at the optimum.

    ``limit`` :math:`b_k` and ``activity`` :math:`a_k^\\top x^*` are in the constraint's unit (performance,
    units or currency); ``slack`` is how far the activity is from the limit (0 when tight); ``dual`` is
    :math:`\\partial z^* / \\partial b_k` (objective units per unit of the limit) or None where no dual exists;
    ``step_change`` (integer problems only) is :math:`z^*(b_k + 1) - z^*(b_k)`, the objective change when the
    limit is raised by one and the MILP re-solved (None for an LP, or when that re-solve is infeasible);
    ``meaning`` says it in words.
    """

    constraint: str
    sense: Literal[">=", "<="]
    limit: float
    activity: float
    slack: float
    tight: bool
    dual: float | None
    step_change: float | None
    meaning: str


@dataclass(frozen=True, kw_only=True)
class Relaxation:
    """The smallest change of one constraint's limit, alone, that makes an infeasible problem feasible.

    ``current`` and ``required`` are in the constraint's unit (performance, units or currency)."""

    constraint: str
    current: float
    required: float
    message: str


@dataclass(frozen=True, kw_only=True)
class AllocationResult:
    """The answer of :func:`solve_allocation`.

    ``allocation`` maps resource name to units :math:`x_i` (None when infeasible); ``objective`` is
    :math:`z^*` (currency for min_cost, performance units for max_performance); ``total_cost`` (currency),
    ``total_performance`` (performance units) and ``total_units`` (units) describe the allocation;
    ``dual_basis`` says where the duals come from; ``conflicting_constraints`` is an irreducible infeasible
    set and ``relaxations`` the single changes that each restore feasibility.

    ``status == "time_limit"``: the solver stopped at ``time_limit_s`` (s) with the allocation found so far;
    ``mip_gap`` is HiGHS's relative gap between it and the best bound (0 when proven optimal; None for an
    LP). ``step_changes_skipped`` counts binding per-resource bounds whose integer step change was not
    re-solved (at most :data:`MAX_STEP_RESOLVES` re-solves per problem, fewer above 1,000 resources:
    :data:`STEP_RESOLVE_BUDGET`).
    """

    status: Literal["optimal", "time_limit", "infeasible"]
    objective_kind: Objective
    allocation: dict[str, float] | None
    objective: float | None
    total_cost: float | None
    total_performance: float | None
    total_units: float | None
    integer: bool
    dual_basis: DualBasis | None
    binding_constraints: tuple[BindingConstraint, ...]
    conflicting_constraints: tuple[str, ...]
    relaxations: tuple[Relaxation, ...]
    message: str
    mip_gap: float | None = None
    time_limit_s: float | None = None
    step_changes_skipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of ``mlcost allocate --json`` (see docs/allocate.md)."""
        out = dataclasses.asdict(self)
        out["binding_constraints"] = [dataclasses.asdict(b) for b in self.binding_constraints]
        out["relaxations"] = [dataclasses.asdict(r) for r in self.relaxations]
        out["conflicting_constraints"] = list(self.conflicting_constraints)
        return out


# ------------------------------------------------------------------------------------------- the maths


@dataclass(frozen=True)
class _Row:
    """Constraint k: a_k^T x (sense) b_k. A global row keeps its dense coefficients ``a`` (length n; there
    are at most three such rows); a per-resource bound has ``index`` i and ``a = None`` (a_k = e_i, never
    materialised), so the rows take memory linear in n."""

    key: str
    label: str  # in words, e.g. "the performance floor of 1000"
    sense: Literal[">=", "<="]
    a: np.ndarray | None
    b: float
    index: int | None = None

    def activity(self, x: np.ndarray) -> float:
        """a_k^T x."""
        return float(x[self.index]) if self.a is None else float(self.a @ x)

    def weights(self, n: int) -> np.ndarray:
        """a_k as a dense vector (only used as an objective, O(n))."""
        if self.a is not None:
            return self.a
        w = np.zeros(n)
        w[self.index] = 1.0
        return w


@dataclass(frozen=True)
class _Solution:
    status: Literal["optimal", "infeasible", "unbounded", "time_limit"]
    x: np.ndarray | None = None
    z: float | None = None
    duals: dict[str, float | None] = field(default_factory=dict)
    mip_gap: float | None = None


def _fmt(v: float) -> str:
    return str(round(v)) if abs(v - round(v)) <= _TOL * max(1.0, abs(v)) else f"{v:.6g}"


def _rows(problem: AllocationProblem, c: np.ndarray, p: np.ndarray) -> list[_Row]:
    """All constraints of the problem as rows a_k^T x (sense) b_k."""
    n = len(problem.resources)
    P, U, B = problem.constraints.min_performance, problem.constraints.max_units, problem.constraints.max_cost
    rows: list[_Row] = []
    if P is not None:
        rows.append(_Row("constraints.min_performance", f"the performance floor of {_fmt(P)}", ">=", p, P))
    if U is not None:
        rows.append(_Row("constraints.max_units", f"the total-unit cap of {_fmt(U)}", "<=", np.ones(n), U))
    if B is not None:
        rows.append(_Row("constraints.max_cost", f"the budget of {_fmt(B)}", "<=", c, B))
    for i, r in enumerate(problem.resources):
        if r.min_units > 0:
            rows.append(
                _Row(
                    f"resource.{r.name}.min_units",
                    f"at least {_fmt(r.min_units)} {r.name} units",
                    ">=",
                    None,
                    r.min_units,
                    i,
                )
            )
        if r.max_units is not None:
            rows.append(
                _Row(
                    f"resource.{r.name}.max_units",
                    f"at most {_fmt(r.max_units)} {r.name} units",
                    "<=",
                    None,
                    r.max_units,
                    i,
                )
            )
    return rows


def _solve(
    rows: Sequence[_Row],
    w: np.ndarray,
    *,
    maximise: bool,
    Z: np.ndarray,
    fixed: dict[int, float] | None = None,
    time_limit_s: float | None = None,
) -> _Solution:
    """Optimise w^T x over the rows (x >= 0, x_i integer for i in Z); duals only for a pure LP.

    Per-resource rows become variable bounds; the (at most three) global rows a sparse matrix, so memory is
    linear in n. ``fixed`` pins x_i to a value (the bound rows of pinned variables are then ignored and get
    no dual). ``time_limit_s`` stops HiGHS: a MILP then returns its best allocation so far and the relative
    MIP gap (``status == "time_limit"``).
    """
    from scipy.optimize import Bounds, LinearConstraint, linprog, milp
    from scipy.sparse import csr_array

    n = len(w)
    fixed = fixed or {}
    lb, ub = np.zeros(n), np.full(n, np.inf)
    A_rows, b_ub, ub_rows = [], [], []  # global rows as  A_ub x <= b_ub
    for row in rows:
        if row.index is not None:
            if row.index in fixed:
                continue
            if row.sense == ">=":
                lb[row.index] = max(lb[row.index], row.b)
            else:
                ub[row.index] = min(ub[row.index], row.b)
        else:
            sign = -1.0 if row.sense == ">=" else 1.0
            A_rows.append(sign * row.weights(n))
            b_ub.append(sign * row.b)
            ub_rows.append(row)
    for i, v in fixed.items():
        lb[i] = ub[i] = v
    if np.any(lb > ub):  # an empty box; HiGHS would reject the bounds rather than report infeasible
        return _Solution("infeasible")
    A_ub = csr_array(np.vstack(A_rows)) if A_rows else None  # k <= 3 rows of n coefficients
    options: dict[str, Any] = {} if time_limit_s is None else {"time_limit": float(time_limit_s)}
    sign_w = -1.0 if maximise else 1.0
    is_integer = Z.copy()
    for i in fixed:
        is_integer[i] = False
    if is_integer.any():
        constraints = [LinearConstraint(A_ub, -np.inf, np.array(b_ub))] if A_ub is not None else []
        res = milp(
            sign_w * w,
            integrality=is_integer.astype(int),
            bounds=Bounds(lb, ub),
            constraints=constraints,
            options=options,
        )
        if res.status == 0:
            return _Solution("optimal", res.x, float(w @ res.x), mip_gap=_gap(res))
        if res.status == 1 and res.x is not None:  # time limit with an incumbent
            return _Solution("time_limit", res.x, float(w @ res.x), mip_gap=_gap(res))
        if res.status == 1:
            raise SpecError(
                f"the solver hit the time limit of {time_limit_s:g} s before finding any allocation",
                hint="raise --time-limit",
            )
    else:
        res = linprog(
            sign_w * w,
            A_ub=A_ub,
            b_ub=np.array(b_ub) if b_ub else None,
            bounds=np.column_stack([lb, ub]),
            method="highs",
            options=options,
        )
        if res.status == 1:
            raise SpecError(
                f"the solver hit the time limit of {time_limit_s:g} s before solving the LP",
                hint="raise --time-limit",
            )
        if res.status == 0:
            # HiGHS marginals are d(sign_w * z)/d(rhs); turn them into dz/db_k for each row k.
            duals: dict[str, float | None] = {}
            for row, m in zip(ub_rows, res.ineqlin.marginals, strict=True):
                duals[row.key] = sign_w * (-m if row.sense == ">=" else m)
            for row in rows:
                if row.index is not None and row.index not in fixed:
                    m = (
                        res.lower.marginals[row.index]
                        if row.sense == ">="
                        else res.upper.marginals[row.index]
                    )
                    duals[row.key] = sign_w * m
            return _Solution("optimal", res.x, float(w @ res.x), duals)
    if res.status == 2:
        return _Solution("infeasible")
    if res.status == 3:
        return _Solution("unbounded")
    raise SpecError(
        f"the solver stopped without an answer: {res.message}",
        hint="check for very large or very small numbers in the file",
    )


def _gap(res: Any) -> float | None:
    gap = getattr(res, "mip_gap", None)
    return float(gap) if gap is not None and np.isfinite(gap) else None


def _feasible(rows: Sequence[_Row], n: int, Z: np.ndarray) -> bool:
    return _solve(rows, np.zeros(n), maximise=False, Z=Z).status == "optimal"


def _meaning(
    row: _Row,
    dual: float | None,
    step: float | None,
    basis: DualBasis,
    objective: Objective,
    *,
    resolved: bool = True,
) -> str:
    what = {
        "constraints.min_performance": "the performance floor",
        "constraints.max_units": "the total-unit cap",
        "constraints.max_cost": "the budget",
    }.get(row.key, f"{row.key.split('.', 1)[1].rsplit('.', 1)[0]} {row.key.rsplit('.', 1)[1]}")
    z = "cost" if objective == "min_cost" else "performance"

    def change(d: float) -> str:
        if abs(d) <= 1e-9 * max(1.0, abs(d)):
            return f"does not change {z}"
        return f"{'raises' if d > 0 else 'lowers'} {z} by {abs(d):.6g}"

    if basis == "lp":
        assert dual is not None
        return f"raising {what} by 1 {change(dual)}"
    if not resolved:
        text = f"{what} binds (its step change was not re-solved)"
    elif step is None:
        text = f"raising {what} by 1 makes the problem infeasible"
    else:
        text = f"re-solving with {what} raised by 1 {change(step)}"
    if dual is not None:
        text += f"; with the integer units held fixed, the LP dual is {dual:.6g}"
    return text


def _check_bounded(problem: AllocationProblem, rows: list[_Row], p: np.ndarray, c: np.ndarray) -> None:
    """max_performance is unbounded iff some x_i can grow without limit while adding performance."""
    if problem.objective != "max_performance" or problem.constraints.max_units is not None:
        return
    B = problem.constraints.max_cost
    free = [
        r.name
        for i, r in enumerate(problem.resources)
        if p[i] > 0 and r.max_units is None and (B is None or c[i] == 0)
    ]
    if free and _feasible(rows, len(p), np.array([r.integer for r in problem.resources])):
        raise SpecError(
            f"the allocation is unbounded: max_performance can grow without limit through {', '.join(free)}",
            hint="add constraints.max_cost or constraints.max_units, or max_units on " + ", ".join(free),
        )


def solve_allocation(
    problem: AllocationProblem,
    *,
    time_limit_s: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> AllocationResult:
    """Solve the allocation LP/MILP written in the module docstring; explain it if infeasible.

    ``time_limit_s`` bounds each HiGHS solve (Units: s); a MILP stopped by it returns its best allocation
    with ``status == "time_limit"`` and the MIP gap. ``progress`` receives one line per stage.

    Raises :class:`~mlcost.errors.SpecError` when max_performance is unbounded. Infeasibility is an answer,
    not an error: ``status == "infeasible"`` with ``conflicting_constraints`` and ``relaxations``.
    """
    say = progress or (lambda _msg: None)
    res = problem.resources
    n = len(res)
    c = np.array([r.unit_cost for r in res])  # c_i
    p = np.array([r.performance for r in res])  # p_i
    Z = np.array([r.integer for r in res], dtype=bool)  # i in Z
    rows = _rows(problem, c, p)
    maximise = problem.objective == "max_performance"
    w = p if maximise else c  # objective weights
    _check_bounded(problem, rows, p, c)

    kind = "MILP" if Z.any() else "LP"
    say(f"solving the {kind}: {n:,} resources, {len(rows):,} constraints")
    t_solve = time.perf_counter()
    sol = _solve(rows, w, maximise=maximise, Z=Z, time_limit_s=time_limit_s)
    # per-resource step changes may take as long again as the solve itself (at least STEP_RESOLVE_MIN_S)
    step_deadline = time.perf_counter() + max(STEP_RESOLVE_MIN_S, time.perf_counter() - t_solve)
    if sol.status == "unbounded":  # not reachable with non-negative data; kept as a guard
        raise SpecError(
            "the allocation is unbounded", hint="add constraints.max_cost or constraints.max_units"
        )
    if sol.status == "infeasible":
        say("infeasible: looking for the conflicting constraints")
        return _explain_infeasible(problem, rows, n, Z)
    assert sol.x is not None
    if sol.status == "time_limit":
        say(f"time limit reached; MIP gap {sol.mip_gap if sol.mip_gap is not None else float('nan'):.3g}")
    x = np.where(Z, np.round(sol.x), np.round(sol.x, 9))  # integers exact; solver noise off the reals
    x = np.where(np.abs(x) < _TOL, 0.0, x)

    dual_basis: DualBasis
    if not Z.any():
        duals, dual_basis = sol.duals, "lp"
    elif not Z.all():
        say("duals: re-solving the LP with the integer units fixed")
        pinned = _solve(
            rows,
            w,
            maximise=maximise,
            Z=Z,
            fixed={int(i): float(x[i]) for i in np.flatnonzero(Z)},
            time_limit_s=time_limit_s,
        )
        duals, dual_basis = pinned.duals, "lp_with_integers_fixed"
    else:
        duals, dual_basis = {}, "none"

    binding: list[BindingConstraint] = []
    resolves, skipped = 0, 0
    max_bound_resolves = min(MAX_STEP_RESOLVES, STEP_RESOLVE_BUDGET // max(n, 1))
    for row in rows:
        activity = row.activity(x)
        slack = row.b - activity if row.sense == "<=" else activity - row.b
        tight = abs(slack) <= _TOL * max(1.0, abs(row.b))
        dual = duals.get(row.key)
        if dual is not None and abs(dual) <= 1e-9:
            dual = 0.0
        if not tight and not dual:
            continue
        step: float | None = None
        resolved = True
        if Z.any() and sol.status == "optimal":
            # integer problem: the finite change of z* when b_k is raised by one (global rows always; per-
            # resource bounds up to MAX_STEP_RESOLVES re-solves, so a large problem is not solved n times)
            if row.index is not None and (
                resolves >= max_bound_resolves or time.perf_counter() > step_deadline
            ):
                resolved = False
                skipped += 1
            else:
                resolves += 1
                say(f"step change {resolves}: re-solving with {row.key} raised by 1")
                bumped = [dataclasses.replace(k, b=k.b + 1.0) if k is row else k for k in rows]
                try:
                    again = _solve(bumped, w, maximise=maximise, Z=Z, time_limit_s=time_limit_s)
                except SpecError:  # a re-solve that finds nothing in the time limit: no step change
                    again = _Solution("time_limit")
                if again.status == "optimal" and again.z is not None:
                    step = round(again.z - float(w @ x), 9)
                    if abs(step) <= 1e-9 * max(1.0, abs(step)):
                        step = 0.0
                elif again.status == "time_limit":
                    resolved = False
        elif Z.any():
            resolved = False
        binding.append(
            BindingConstraint(
                constraint=row.key,
                sense=row.sense,
                limit=row.b,
                activity=activity,
                slack=0.0 if tight else slack,
                tight=tight,
                dual=dual,
                step_change=step,
                meaning=_meaning(row, dual, step, dual_basis, problem.objective, resolved=resolved),
            )
        )
    z = float(w @ x)
    what = "cost" if not maximise else "performance"
    if sol.status == "time_limit":
        gap = "unknown" if sol.mip_gap is None else f"{sol.mip_gap:.3g}"
        message = f"time limit of {time_limit_s:g} s reached: best {what} found {_fmt(z)}, MIP gap {gap}"
    else:
        message = f"optimal {what} {_fmt(z)}"
    if skipped:
        message += f"; step changes of {skipped} binding per-resource bounds not re-solved"
    return AllocationResult(
        status=sol.status if sol.status == "time_limit" else "optimal",
        objective_kind=problem.objective,
        allocation={r.name: float(x[i]) for i, r in enumerate(res)},
        objective=z,
        total_cost=float(c @ x),
        total_performance=float(p @ x),
        total_units=float(x.sum()),
        integer=bool(Z.any()),
        dual_basis=dual_basis,
        binding_constraints=tuple(binding),
        conflicting_constraints=(),
        relaxations=(),
        message=message,
        mip_gap=sol.mip_gap,
        time_limit_s=time_limit_s,
        step_changes_skipped=skipped,
    )


# ------------------------------------------------------------------------------------ infeasibility


def _conflict(rows: list[_Row], n: int, Z: np.ndarray) -> list[_Row]:
    """Deletion filter: an irreducible infeasible subset K of the rows (x >= 0 and integrality always kept)."""
    K = list(rows)
    for row in rows:
        rest = [k for k in K if k is not row]
        if not _feasible(rest, n, Z):
            K = rest
    return K


def _relax_message(row: _Row, K: list[_Row], required: float, problem: AllocationProblem) -> str:
    floor = next((k for k in K if k.key == "constraints.min_performance"), None)
    if floor is not None and floor is not row:
        subject = f"the performance floor of {_fmt(floor.b)}"
    else:
        subject = "the other constraints (" + ", ".join(k.label for k in K if k is not row) + ")"
    need, cur = _fmt(required), _fmt(row.b)
    if row.key == "constraints.min_performance":
        limits = (
            ", ".join(k.label for k in K if k is not row) or "no other limit; no resource adds performance"
        )
        return f"with these limits ({limits}) at most {need} performance is possible; lower min_performance from {cur} to {need}"
    if row.key == "constraints.max_units":
        return f"{subject} is reachable only with at least {need} units in total; raise max_units from {cur} to {need}"
    if row.key == "constraints.max_cost":
        return f"{subject} costs at least {need}; raise max_cost from {cur} to {need}"
    name = problem.resources[row.index or 0].name
    if row.sense == "<=":
        return f"{subject} is reachable only with at least {need} units of {name}; raise its max_units from {cur} to {need}"
    return (
        f"with the other limits at most {need} units of {name} fit; lower its min_units from {cur} to {need}"
    )


def _explain_infeasible(
    problem: AllocationProblem, rows: list[_Row], n: int, Z: np.ndarray
) -> AllocationResult:
    K = _conflict(rows, n, Z)
    relaxations: list[Relaxation] = []
    for row in K:
        others = [k for k in rows if k is not row]
        # floor: largest b_k' = max a_k^T x that the others allow; cap: smallest b_k' = min a_k^T x they need
        aux = _solve(others, row.weights(n), maximise=row.sense == ">=", Z=Z)
        if aux.status != "optimal" or aux.z is None:
            continue  # relaxing this row alone is not enough (another conflict remains)
        required = aux.z
        if abs(required - round(required)) <= 1e-6 * max(1.0, abs(required)):
            required = float(round(required))
        relaxations.append(
            Relaxation(
                constraint=row.key,
                current=row.b,
                required=required,
                message=_relax_message(row, K, required, problem),
            )
        )
    names = ", ".join(k.label for k in K)
    message = f"infeasible: {names} cannot {'all hold' if len(K) > 1 else 'hold'}"
    if not relaxations:
        message += "; no single change suffices, relax several of them"
    return AllocationResult(
        status="infeasible",
        objective_kind=problem.objective,
        allocation=None,
        objective=None,
        total_cost=None,
        total_performance=None,
        total_units=None,
        integer=bool(Z.any()),
        dual_basis=None,
        binding_constraints=(),
        conflicting_constraints=tuple(k.key for k in K),
        relaxations=tuple(relaxations),
        message=message,
    )
