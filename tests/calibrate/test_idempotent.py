"""Re-running `mlcost calibrate` is idempotent (issue #8): the second run matches the same catalog row (never
the first run's ``local``), keeps the profile fitted for it and the same assumed power. The microbenchmarks
run for real except their clock (``_wall_times_s``, the one timing loop) and the 2-process all-reduce."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlcost import context, paths
from mlcost.calibrate import microbench, pipeline
from mlcost.catalog import builtin_catalog, parse_cpuinfo
from mlcost.cli.main import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cpuinfo"


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")

    def wall_times_s(fn: Any, *, warmup: int, repeats: int, sync: Any) -> list[float]:
        return [0.02 + 0.001 * i for i in range(repeats)]  # deterministic; fn is not run

    monkeypatch.setattr(microbench, "_wall_times_s", wall_times_s)
    monkeypatch.setattr(
        microbench,
        "bench_allreduce",
        lambda sizes, *, repeats: {s: 4e7 * (1 + i) for i, s in enumerate(sizes)},
    )


def _state(profile_dir: Path, host: Any) -> dict[str, Any]:
    cat = context.default_catalog(host=host)
    return {
        "device_ids": sorted(d.id for d in cat.devices()),
        "local": cat.device("local"),
        "local_profile": cat.efficiency("local"),
        "epyc_profile": cat.efficiency("cpu-epyc-2vcpu"),
        "assumed_power_w": cat.device("local").tdp_w,
        "profile.toml": (profile_dir / "profile.toml").read_text(),
    }


@pytest.mark.usefixtures("fake_clock")
def test_calibrating_twice_gives_the_same_rows_profile_and_power() -> None:
    epyc = parse_cpuinfo((FIXTURES / "epyc_avx2.txt").read_text())
    states, cals = [], []
    for _ in range(2):
        cal, fit = pipeline.run_calibration(
            quick=True,
            use_runs=False,
            use_ledger=False,
            catalog=context.default_catalog(calibration=False, host=epyc),
            directory=paths.profile_dir(),
            host=epyc,
        )
        assert fit is None
        context.invalidate(builtin=False)
        cals.append(cal)
        states.append(_state(paths.profile_dir(), epyc))
    first, second = states
    assert first == second
    assert [c.base_device for c in cals] == ["cpu-epyc-2vcpu", "cpu-epyc-2vcpu"]
    assert first["assumed_power_w"] == builtin_catalog().device("cpu-epyc-2vcpu").tdp_w
    assert first["epyc_profile"].source.endswith("to the cpu-epyc-2vcpu row")  # the fit, rescaled
    assert first["device_ids"].count("local") == 1


@pytest.mark.usefixtures("fake_clock")
def test_cli_calibrate_twice_on_this_host_is_idempotent(capsys: pytest.CaptureFixture[str]) -> None:
    outs = []
    for _ in range(2):
        assert main(["calibrate", "--quick", "--no-runs", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        out["microbench"].pop("seconds")
        out["provenance"].pop("date")
        outs.append(out)
    assert outs[0] == outs[1]
    assert set(outs[0]["provenance"]["host_cpu"]) == {"cpu_model", "vendor", "isa", "flags", "logical_cpus"}
    assert outs[0]["provenance"]["catalog_match"]
    assert context.local_calibration() is not None  # recorded for this host, so it applies here
