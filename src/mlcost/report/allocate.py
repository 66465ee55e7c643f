"""View of ``mlcost allocate`` from ``AllocationResult.to_dict()`` plus the problem's resources
(``{"resources": [{"name", "unit_cost", "performance"}]}``)."""

from __future__ import annotations

from typing import Any

from mlcost.report.view import Table, View


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x - round(x)) < 1e-9 * max(1.0, abs(x)):
        return f"{round(x):,}"
    return f"{x:,.6g}" if abs(x) < 1e6 else f"{x:,.0f}"


def view(d: dict[str, Any]) -> View:
    v = View()
    if d["status"] == "infeasible":
        v.line(str(d.get("message", "infeasible")), "red")
        v.line("conflicting constraints: " + ", ".join(d["conflicting_constraints"]))
        if d["relaxations"]:
            t = v.table(
                Table(
                    "Smallest single change that makes it feasible",
                    ["constraint", "current", "required", "why"],
                    right=("current", "required"),
                    wrap=("why",),
                )
            )
            for rx in d["relaxations"]:
                t.add(rx["constraint"], _num(rx["current"]), _num(rx["required"]), rx["message"])
        return v
    t = v.table(
        Table(
            f"Allocation ({d['objective_kind']}: {d.get('message', d['status'])})",
            ["resource", "units", "cost", "performance"],
            right=("units", "cost", "performance"),
        )
    )
    for r in d["resources"]:
        x = d["allocation"][r["name"]]
        t.add(r["name"], _num(x), _num(x * r["unit_cost"]), _num(x * r["performance"]))
    t.section_before = (len(t.rows),)
    t.add("total", _num(d["total_units"]), _num(d["total_cost"]), _num(d["total_performance"]))
    if d["binding_constraints"]:
        basis = {
            "lp": "LP dual values (HiGHS marginals)",
            "lp_with_integers_fixed": "MILP: re-solved step change; dual of the LP with integer units fixed",
            "none": "MILP, all integer: re-solved step change (no duals exist)",
        }[d.get("dual_basis") or "none"]
        b = v.table(
            Table(
                f"Binding constraints ({basis})",
                ["constraint", "limit", "dual", "step", "meaning"],
                right=("limit", "dual", "step"),
                wrap=("meaning",),
            )
        )
        for c in d["binding_constraints"]:
            b.add(c["constraint"], _num(c["limit"]), _num(c["dual"]), _num(c["step_change"]), c["meaning"])
    else:
        v.line("no constraint binds")
    return v
