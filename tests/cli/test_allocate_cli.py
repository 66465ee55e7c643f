"""`mlcost allocate`: the --json contract, exit codes, and the rendered tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlcost.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "allocate"
CONTRACT = {"status", "allocation", "objective", "binding_constraints", "relaxations"}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_optimal(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "allocate", str(EXAMPLES / "gpu_pool.toml"), "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) >= CONTRACT
    assert data["status"] == "optimal"
    assert data["allocation"] == {"h100": 256, "a100": 214, "spot_a100": 30}
    assert data["objective"] == pytest.approx(1485)
    assert data["dual_basis"] == "lp_with_integers_fixed"
    floor = next(b for b in data["binding_constraints"] if b["constraint"] == "constraints.min_performance")
    assert {"constraint", "limit", "activity", "slack", "tight", "dual", "step_change", "meaning"} <= set(
        floor
    )
    assert data["relaxations"] == []


def test_json_infeasible_exits_zero_and_explains(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "allocate", str(EXAMPLES / "infeasible.toml"), "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) >= CONTRACT
    assert data["status"] == "infeasible" and data["allocation"] is None and data["objective"] is None
    assert data["conflicting_constraints"] == [
        "constraints.min_performance",
        "constraints.max_units",
        "resource.h100.max_units",
    ]
    relax = {r["constraint"]: r for r in data["relaxations"]}
    assert set(relax["constraints.max_units"]) == {"constraint", "current", "required", "message"}
    assert relax["constraints.max_units"]["required"] == 872
    assert relax["resource.h100.max_units"]["message"].startswith(
        "the performance floor of 1000 is reachable only with at least 300 units of h100"
    )
    assert "at most 528 performance is possible" in relax["constraints.min_performance"]["message"]


def test_yaml_example_renders_tables(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "allocate", str(EXAMPLES / "inference_fleet.yaml"))
    assert code == 0
    assert "Allocation (max_performance" in out
    assert "a10g" in out and "148.8" in out
    assert "constraints.max_cost" in out and "LP dual values" in out


def test_infeasible_renders_the_changes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "allocate", str(EXAMPLES / "infeasible.toml"))
    assert code == 0
    assert out.startswith("infeasible: the performance floor of 1000")
    assert "872" in out and "528" in out


def test_bad_file_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[resource]]\nname = "gpu"\nunit_cost = 1.0\nperformence = 2.0\n')
    code, out, err = run(capsys, "allocate", str(path), "--json")
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert "unknown key in resource[1]: 'performence' (did you mean 'performance'?)" in err
    assert str(path) in err


def test_unbounded_is_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "free.yaml"
    path.write_text(
        "objective: max_performance\nresource:\n  - {name: gpu, unit_cost: 1.0, performance: 2.0}\n"
    )
    code, _, err = run(capsys, "allocate", str(path))
    assert code == 2
    assert "unbounded" in err and "max_cost" in err
