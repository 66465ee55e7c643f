"""Shape rules of mlcost.measure (issue #8): the runner is split up, no function is longer than 80 lines,
and there is one step loop."""

from __future__ import annotations

import ast
from pathlib import Path

import mlcost.measure

MEASURE = Path(mlcost.measure.__file__).parent
MAX_FUNCTION_LINES = 80
MAX_RUNNER_LINES = 400


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def test_no_function_in_measure_is_over_80_lines():
    too_long = []
    for path in sorted(MEASURE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in _functions(tree):
            lines = (fn.end_lineno or fn.lineno) - fn.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                too_long.append(f"{path.relative_to(MEASURE)}:{fn.lineno} {fn.name} ({lines} lines)")
    assert not too_long, "functions over 80 lines: " + ", ".join(too_long)


def test_the_checker_sees_a_long_function():
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES + 1))
    fn = next(_functions(ast.parse(f"def f():\n{body}\n")))
    assert fn.end_lineno - fn.lineno + 1 > MAX_FUNCTION_LINES


def test_runner_is_small():
    lines = (MEASURE / "runner.py").read_text(encoding="utf-8").count("\n")
    assert lines < MAX_RUNNER_LINES


def test_one_step_loop():
    """Only mlcost.measure.steps iterates over steps and stops a step timer; every other module plugs
    into StepLoop (drive, or begin/end from a framework's hooks)."""
    offenders = []
    for path in sorted(MEASURE.rglob("*.py")):
        if path.name == "steps.py" or "meters" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        if "timer.stop()" in text or "timer.start()" in text:
            offenders.append(str(path.relative_to(MEASURE)))
    calibrate_runs = MEASURE.parent / "calibrate" / "runs.py"
    if "perf_counter" in calibrate_runs.read_text(encoding="utf-8"):
        offenders.append("calibrate/runs.py")
    assert not offenders, f"step timing outside mlcost.measure.steps: {offenders}"
