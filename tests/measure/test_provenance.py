from __future__ import annotations

import json
import time

from mlcost.measure import provenance


def test_collect_provenance_is_fast_complete_and_json_safe() -> None:
    t0 = time.perf_counter()
    prov = provenance.collect_provenance()
    assert time.perf_counter() - t0 < 3.0
    json.dumps(prov)
    for key in ("hostname", "os", "python", "cpu", "cores", "memory_total_bytes", "gpus", "versions", "git"):
        assert key in prov
    assert set(provenance.FLAGS_OF_INTEREST) == set(prov["cpu"]["flags"])
    assert prov["versions"]["mlcost"]
    assert prov["cores"]["affinity"] >= 1
    assert set(prov["energy_counters"]) == {"nvml", "rapl"}


def test_provenance_never_raises(monkeypatch) -> None:
    def boom(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(provenance, "cpu_cores", boom)
    monkeypatch.setattr(provenance, "gpus", boom)
    monkeypatch.setattr(provenance, "library_versions", boom)
    prov = provenance.collect_provenance()
    assert prov["cores"] == {} and prov["gpus"] == [] and prov["versions"] == {}


def test_library_versions_of_absent_package() -> None:
    assert provenance.library_versions(("surely-not-installed-pkg",)) == {"surely-not-installed-pkg": None}
