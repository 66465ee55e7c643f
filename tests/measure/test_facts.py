"""measure/ is given its facts (catalog, calibration) as a :class:`RunFacts` value and never fetches them:
no import of the application edge, the calibrated peak when a calibration is given for this host, the
matched or generic catalog row (labelled) otherwise. Hosts are /proc/cpuinfo fixtures (tests/fixtures/cpuinfo/).
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from mlcost.calibrate.profile import Calibration, save_calibration
from mlcost.catalog import HostCpu, builtin_catalog, parse_cpuinfo
from mlcost.measure.facts import cost_inputs, mfu_peak, predict_train, run_device
from mlcost.measure.meters.estimated import estimate_cpu_power
from mlcost.measure.options import RunFacts, TrainOptions, TrainShape
from tests.measure.test_runner_specs import TINY_GPT2

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "cpuinfo"
MEASURE = ROOT / "src" / "mlcost" / "measure"
#: A calibrated fp32 peak no catalog row has, so a figure equal to it can only come from the calibration.
CALIBRATED_FP32_FLOPS_PER_S = 1.234e12


def host(name: str) -> HostCpu:
    return parse_cpuinfo((FIXTURES / name).read_text())


def calibration_for(cpu: HostCpu) -> Calibration:
    """A calibration of ``cpu``: the EPYC row with a measured peak, the default CPU profile."""
    cat = builtin_catalog()
    local = dataclasses.replace(
        cat.device("cpu-epyc-2vcpu"), id="local", peak_flops_per_s={"fp32": CALIBRATED_FP32_FLOPS_PER_S}
    )
    profile = dataclasses.replace(cat.efficiency("default-cpu"), device="local", date="2026-12-01")
    return Calibration(device=local, profile=profile, provenance={"host_cpu": cpu.identity()})


def _imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside functions (absolute names)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def test_measure_never_imports_the_application_edge() -> None:
    """measure/ sits below context, paths and calibrate: it is handed its facts, it never fetches them."""
    edge = ("mlcost.context", "mlcost.paths", "mlcost.calibrate")
    offenders = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in MEASURE.rglob("*.py")
        for name in _imported_modules(path)
        if any(name == e or name.startswith(e + ".") for e in edge)
    }
    assert not offenders, sorted(offenders)


def test_the_edge_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from mlcost.context import default_catalog\n    from mlcost import paths\n")
    assert {"mlcost.context", "mlcost.paths"} <= _imported_modules(bad)


def test_a_run_given_a_calibration_uses_the_calibrated_peak_for_mfu() -> None:
    """A real (tiny) training run: MFU against the calibrated peak, labelled, and the predicted block on
    the calibrated ``local`` row."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from mlcost.measure.train import run_training

    here = host("epyc_avx2.txt")
    facts = RunFacts(builtin_catalog(), calibration_for(here), host=here)
    opts = TrainOptions(shape=TrainShape(micro_batch=1, seq_len=16), steps=2, warmup=1, facts=facts)
    rec = run_training(TINY_GPT2, opts)
    assert rec.status == "completed", rec.error
    m = rec.metrics
    assert m["mfu_peak_flops_per_s"] == pytest.approx(CALIBRATED_FP32_FLOPS_PER_S)
    assert m["mfu_peak_source"].startswith("calibrated profile")
    assert m["mfu"] == pytest.approx(m["achieved_flops_per_s_per_device"] / CALIBRATED_FP32_FLOPS_PER_S)
    assert rec.predicted["device"] == "local" and rec.predicted["step_time_s"] > 0


def test_without_facts_a_saved_calibration_is_not_fetched() -> None:
    """A calibration of this very machine saved in MLCOST_PROFILE_DIR is the edge's to read: measure/
    given no facts uses the package catalog only."""
    from mlcost import paths
    from mlcost.catalog import detect_host

    save_calibration(calibration_for(detect_host()), paths.profile_dir())
    peak, source = mfu_peak("cpu", "fp32")
    assert "calibrated" not in source and peak != CALIBRATED_FP32_FLOPS_PER_S
    assert run_device("cpu") is not None and not run_device("cpu").calibrated  # type: ignore[union-attr]


def test_uncalibrated_epyc_gets_its_catalog_row_peak() -> None:
    facts = RunFacts(builtin_catalog(), None, host=host("epyc_avx2.txt"))
    peak, source = mfu_peak("cpu", "fp32", facts)
    assert peak == builtin_catalog().device("cpu-epyc-2vcpu").peak_for("fp32")
    assert source.startswith("catalog row cpu-epyc-2vcpu") and "fp32 dense peak" in source


def test_uncalibrated_amx_xeon_gets_the_generic_amx_row_scaled_to_its_cpus() -> None:
    xeon = host("xeon_amx.txt")
    facts = RunFacts(builtin_catalog(), None, host=xeon)
    per_cpu = builtin_catalog().device("cpu-generic-amx")
    for precision in ("fp32", "bf16"):
        peak, source = mfu_peak("cpu", precision, facts)
        assert peak == pytest.approx(per_cpu.peak_for(precision) * xeon.logical_cpus)  # type: ignore[operator]
        assert source.startswith("generic AMX") and "cpu-generic-amx" in source and "not measured" in source
    # the prediction resolves the scaled row too (not the per-logical-CPU one)
    pred = predict_train(TINY_GPT2, TrainShape(micro_batch=1, seq_len=16), "cpu", 1, "fp32", 2, facts)
    assert pred["device"] == "cpu-generic-amx" and pred["step_time_s"] > 0


def test_a_calibration_of_another_host_is_not_used() -> None:
    """Recorded on the EPYC, given for a Xeon: the Xeon's generic row, never the EPYC's measured peak."""
    facts = RunFacts(builtin_catalog(), calibration_for(host("epyc_avx2.txt")), host=host("xeon_amx.txt"))
    rd = run_device("cpu", facts)
    assert rd is not None and not rd.calibrated and rd.device.id == "cpu-generic-amx"
    peak, _ = mfu_peak("cpu", "fp32", facts)
    assert peak != CALIBRATED_FP32_FLOPS_PER_S


def test_cost_and_estimated_power_come_from_the_given_catalog() -> None:
    """Price/PUE/carbon and the estimated CPU power resolve in the catalog the run is given."""
    cat = builtin_catalog()
    epyc = host("epyc_avx2.txt")
    inputs = cost_inputs("cpu", None, RunFacts(cat, None, host=epyc))
    assert inputs.pue == cat.pue(None).pue and inputs.carbon_kg_per_kwh == cat.carbon().kg_co2_per_kwh
    est = estimate_cpu_power(cores_used=2, catalog=cat, host=epyc)
    row = cat.device("cpu-epyc-2vcpu")
    assert (est.socket_w, est.cores_total) == (row.tdp_w, 2) and "cpu-epyc-2vcpu" in est.explanation
    xeon = host("xeon_amx.txt")
    est = estimate_cpu_power(cores_used=2, catalog=cat, host=xeon)
    assert est.socket_w == pytest.approx(cat.device("cpu-generic-amx").tdp_w * xeon.logical_cpus)  # type: ignore[operator]
    assert "cpu-generic-amx" in est.explanation


def test_callbacks_take_a_catalog_or_facts_not_both() -> None:
    from mlcost.measure.integrations.common import callback_facts

    cat = builtin_catalog()
    assert callback_facts(None, cat) == RunFacts(cat)
    given = RunFacts(cat, None, host=host("xeon_amx.txt"))
    assert callback_facts(given, None) is given
    assert callback_facts(None, None).calibration is None
    with pytest.raises(ValueError, match="not both"):
        callback_facts(given, cat)
