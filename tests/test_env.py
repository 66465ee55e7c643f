from __future__ import annotations

import json
from unittest import mock

from mlcost import env


def test_collect_env_is_json_safe() -> None:
    data = env.collect_env()
    json.dumps(data)
    assert data["cpu"]["implications"]
    if not (data["energy"]["nvml"] or data["energy"]["rapl"]):
        assert "estimated" in data["energy"]["note"]


def test_cpu_implications() -> None:
    plain = env.cpu_implications({"avx2": True})
    assert any("bf16 autocast will be slow" in n for n in plain)
    assert any("no VNNI" in n for n in plain)
    rich = env.cpu_implications({"avx2": True, "amx_bf16": True, "amx_tile": True, "avx512_vnni": True})
    assert any("AMX" in n for n in rich) and not any("no VNNI" in n for n in rich)


def test_works_without_torch() -> None:
    with mock.patch.object(env.prov, "library_versions", return_value={"torch": None}):
        info = env.torch_info()
    assert info["installed"] is False and "torch==2.13.0" in info["note"]


def test_env_does_not_import_torch_without_a_gpu_driver() -> None:
    from tests.no_import import run_refusing

    code = "import sys; from mlcost.env import collect_env; collect_env(); print('torch' in sys.modules)"
    if env._has_nvidia_driver():
        return
    proc = run_refusing(code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False"
