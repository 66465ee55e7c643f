"""The application edge: mlcost.paths owns the environment and user dirs; mlcost.context assembles the
default catalog. Library results never depend on them."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from mlcost import context, paths
from mlcost.calibrate.fit import initial_profile, local_device
from mlcost.calibrate.microbench import MicrobenchResult
from mlcost.calibrate.profile import Calibration, save_calibration
from mlcost.catalog import HostCpu, builtin_catalog, clear_cache, parse_cpuinfo, resolve_model
from mlcost.cli.main import main
from mlcost.estimate import estimate_train
from mlcost.spec import Cluster, TrainJob

SRC = Path(__file__).resolve().parents[1] / "src" / "mlcost"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cpuinfo"
LIBRARY = ("spec", "catalog", "estimate", "plan", "finance", "calibrate")


def _host(name: str) -> HostCpu:
    return parse_cpuinfo((FIXTURES / name).read_text())


def _estimate() -> dict[str, object]:
    model = resolve_model("llama-3.1-8b")
    job = TrainJob(tokens=1e12, seq_len=4096, global_batch=512, micro_batch=1, precision="bf16")
    return estimate_train(model, job, Cluster(device="h100-sxm", count=64)).to_dict()


def test_estimate_train_ignores_home_and_every_mlcost_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _estimate()
    junk = tmp_path / "junk"
    junk.mkdir()
    for name in ("profile.toml", "calibration.json", "ledger.db", "catalog.toml", "models.toml"):
        (junk / name).write_bytes(b"\x00\xffnot [[valid]] = toml {json\n")
    override = junk / "override.toml"  # a valid override that would change the answer if it were read
    prof = (
        builtin_catalog().efficiency("h100-sxm").replace(matmul_eff_max=0.2, source="junk", date="2026-01-01")
    )
    fields = {k: v for k, v in prof.to_dict().items() if k != "extra"}
    override.write_text("[[profile]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in fields.items()))
    monkeypatch.setenv("HOME", str(junk))
    monkeypatch.setenv("XDG_DATA_HOME", str(junk))
    monkeypatch.setenv(paths.ENV_CATALOG, f"{override}:{junk / 'catalog.toml'}")
    monkeypatch.setenv(paths.ENV_PROFILE_DIR, str(junk))
    monkeypatch.setenv(paths.ENV_LEDGER, str(junk / "ledger.db"))
    clear_cache()
    context.invalidate()
    assert _estimate() == before
    # the edge does read them: the same estimate through the CLI's default catalog would differ
    monkeypatch.setenv(paths.ENV_CATALOG, str(override))
    assert context.default_catalog().efficiency("h100-sxm").matmul_eff_max == 0.2


def test_paths_cover_every_mlcost_variable_in_the_package() -> None:
    used = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            value = node.value if isinstance(node, ast.Constant) else None
            if isinstance(value, str) and value.startswith("MLCOST_") and value.isupper():
                used.add(value)
    assert used <= set(paths.ENV_VARS)


@pytest.mark.parametrize("package", LIBRARY)
def test_library_code_reads_no_environment_and_no_user_dirs(package: str) -> None:
    """No getenv, no reads of os.environ, no platformdirs in the library layers (writes for a child
    process, like calibrate's all-reduce workers' MASTER_ADDR, are allowed)."""
    bad = []
    for path in (SRC / package).rglob("*.py"):
        tree = ast.parse(path.read_text())
        stores = {
            id(n.value)
            for n in ast.walk(tree)
            if isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Store)
        }
        for node in ast.walk(tree):
            where = f"{path.relative_to(SRC)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                if any(n.split(".")[0] == "platformdirs" for n in names) or "mlcost.paths" in names:
                    bad.append(f"{where} imports {names}")
            elif (
                isinstance(node, ast.Attribute)
                and node.attr in ("environ", "getenv", "expanduser", "home")
                and id(node) not in stores
            ):
                bad.append(f"{where} reads {node.attr}")
    assert not bad


def test_default_catalog_applies_env_then_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = tmp_path / "a.toml"
    a.write_text('[[provider]]\nprovider = "aws"\npue = 1.5\nsource = "a"\ndate = "2026-01-01"\n')
    b = tmp_path / "b.toml"
    b.write_text('[[provider]]\nprovider = "aws"\npue = 1.4\nsource = "b"\ndate = "2026-01-01"\n')
    assert context.default_catalog().pue("aws").pue == 1.15
    monkeypatch.setenv(paths.ENV_CATALOG, str(a))
    cat = context.default_catalog()
    assert cat.pue("aws").pue == 1.5
    assert context.default_catalog() is cat  # cached
    assert context.default_catalog([b]).pue("aws").pue == 1.4  # --catalog files win
    a.write_text('[[provider]]\nprovider = "aws"\npue = 1.6\nsource = "a"\ndate = "2026-01-01"\n')
    import os

    os.utime(a, ns=(1, 2_000_000_000_000_000_000))
    assert context.default_catalog().pue("aws").pue == 1.6  # a changed file is re-read
    assert builtin_catalog().pue("aws").pue == 1.15  # the library default never moves


def _calibration_for(host: HostCpu) -> Calibration:
    mb = MicrobenchResult(
        device="cpu",
        threads=2,
        matmul_flops_per_s={"float32": {256: 20e9, 1024: 40e9}},
        copy_bytes_per_s=10e9,
        elementwise_bytes_per_s={"add": 8e9},
    )
    base = builtin_catalog().device("cpu-epyc-2vcpu")
    return Calibration(
        device=local_device(mb, base, date="2026-12-01"),
        profile=initial_profile(mb, builtin_catalog().efficiency("default-cpu"), date="2026-12-01"),
        base_device=base.id,
        provenance={"host": "fixture", "host_cpu": host.identity()},
    )


def test_calibration_applies_on_its_own_host_only(capsys: pytest.CaptureFixture[str]) -> None:
    epyc, xeon = _host("epyc_avx2.txt"), _host("xeon_amx.txt")
    save_calibration(_calibration_for(epyc), paths.profile_dir())
    same = context.default_catalog(host=epyc)
    assert same.device("local").peak_flops_per_s["fp32"] == pytest.approx(40e9)
    assert same.efficiency("local").device == "local"
    assert capsys.readouterr().err == ""

    other = context.default_catalog(host=xeon)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "measured on another host" in err and "CPU model" in err
    local = other.device("local")
    assert "not calibrated" in local.name and "generic AMX" in local.source
    assert local.peak_flops_per_s["bf16"] > 0  # the detected ISA's units, not the EPYC's fp32-only row
    assert other.efficiency("local").device == "default-cpu"
    assert context.local_calibration(host=xeon, warn=False) is None
    assert context.local_calibration(host=epyc) is not None
    context.default_catalog(host=xeon)
    assert capsys.readouterr().err == ""  # warned once


def test_cli_estimate_local_on_another_host_warns_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """`mlcost estimate train --device local` with a calibration from another CPU (this machine is never
    both fixtures at once): one warning line on stderr, and the estimate uses this host's ISA defaults."""
    from mlcost.catalog import detect_host

    here = detect_host()
    other = _host("xeon_amx.txt") if here.isa != "amx" else _host("epyc_avx2.txt")
    save_calibration(_calibration_for(other), paths.profile_dir())
    args = ["estimate", "train", "--model", "gpt2", "--device", "local", "--gpus", "1", "--seq-len", "256"]
    assert main([*args, "--json"]) == 0
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1 and "another host" in err
    data = json.loads(out)
    assert "not calibrated" in json.dumps(data)


def test_paths_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(paths.ENV_PROFILE_DIR)
    monkeypatch.delenv(paths.ENV_LEDGER)
    monkeypatch.setattr(paths, "user_data_dir", lambda: tmp_path / "ud")
    assert paths.profile_dir() == tmp_path / "ud"
    assert paths.profile_toml_path() == tmp_path / "ud" / "profile.toml"
    assert paths.ledger_setting() is None
    assert paths.default_ledger_path() == tmp_path / "ud" / "ledger.db"
    monkeypatch.setenv(paths.ENV_CATALOG, f" {tmp_path / 'a.toml'}{__import__('os').pathsep}")
    assert paths.catalog_override_paths() == [tmp_path / "a.toml"]
