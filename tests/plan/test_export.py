"""Plan exports: a golden export (tests/fixtures/export_golden), each file loaded by its own tool's parser
where the tool is installed (accelerate's config loader; SkyPilot's Task.from_yaml and DeepSpeed's config
class skip cleanly without them), and bad plan files exit 2 with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlcost.catalog import get_catalog
from mlcost.cli.main import main
from mlcost.plan.export import build_exports, load_plan_file, write_files

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "export_golden"
CAT = get_catalog()


def _files(plan_overrides: dict | None = None) -> dict[str, str]:  # type: ignore[type-arg]
    doc = load_plan_file(GOLDEN / "plan_train.json")
    plan = {**doc["plan"], **(plan_overrides or {})}
    return build_exports(CAT.model(doc["model"]), float(doc["tokens"]), plan, doc["snapshot"], 8)


def test_golden_export_is_stable() -> None:
    for name, text in _files().items():
        assert text == (GOLDEN / "files" / name).read_text(), name


def test_every_file_names_the_plan_and_snapshot() -> None:
    for name, text in _files().items():
        assert "mlcost plan #1 for llama-3.1-8b" in text, name
        assert "00148f2af3672e2229b4f7bf8157d5a3f36e3c35" in text, name


def test_cli_export_matches_plan_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "exp"
    assert main(["export", str(GOLDEN / "plan_train.json"), "--out", str(out)]) == 0
    for f in (GOLDEN / "files").iterdir():
        assert (out / f.name).read_text() == f.read_text()
    # the exported plan.json is itself a plan file
    again = tmp_path / "again"
    capsys.readouterr()
    assert main(["export", str(out / "plan.json"), "--out", str(again), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d) == {"out", "files"} and len(d["files"]) == 6
    assert (again / "sky.yaml").read_text() == (out / "sky.yaml").read_text()


def test_plan_train_export_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "exp"
    argv = [
        "plan",
        "train",
        "--model",
        "gpt2",
        "--tokens",
        "1e9",
        "--max-devices",
        "8",
        "--devices",
        "a100-80gb",
    ]
    assert main([*argv, "--export", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert sorted(Path(p).name for p in d["exported"]) == sorted(
        ["sky.yaml", "launch.sh", "accelerate_fsdp.yaml", "ds_config.json", "megatron_args.txt", "plan.json"]
    )
    assert json.loads((out / "plan.json").read_text())["plan"] == d["plans"][0]


@pytest.mark.parametrize("zero", [0, 1, 2, 3])
def test_accelerate_loads_the_config(tmp_path: Path, zero: int) -> None:
    config_args = pytest.importorskip("accelerate.commands.config.config_args")
    files = _files({"tp": 1, "pp": 1, "virtual_stages": 1, "dp": 32, "zero": zero, "recompute": "full"})
    write_files(files, tmp_path)
    cfg = config_args.load_config_from_file(str(tmp_path / "accelerate_fsdp.yaml"))
    expect = {0: "MULTI_GPU", 1: "DEEPSPEED", 2: "FSDP", 3: "FSDP"}[zero]
    assert str(cfg.distributed_type).endswith(expect)
    assert cfg.num_processes == 32 and cfg.num_machines == 4
    if zero >= 2:
        assert cfg.fsdp_config["fsdp_sharding_strategy"] == ("FULL_SHARD" if zero == 3 else "SHARD_GRAD_OP")
        assert cfg.fsdp_config["fsdp_activation_checkpointing"] is True


def test_skypilot_parses_the_task(tmp_path: Path) -> None:
    sky = pytest.importorskip("sky", reason="skypilot is not installed (pip install skypilot)")
    write_files(_files(), tmp_path)
    task = sky.Task.from_yaml(str(tmp_path / "sky.yaml"))
    assert task.num_nodes == 4
    (res,) = list(task.resources)
    assert res.accelerators == {"H100": 8}
    assert res.use_spot is True
    assert str(res.cloud).lower() == "aws" and res.region == "eu-north-1"


DEEPSPEED_KEYS = {
    # keys documented at deepspeed.ai/docs/config-json (batch size, ZeRO, precision, activation checkpointing,
    # logging); mlcost's own provenance sits under "_mlcost", which DeepSpeed ignores
    "train_batch_size",
    "train_micro_batch_size_per_gpu",
    "gradient_accumulation_steps",
    "zero_optimization",
    "bf16",
    "fp16",
    "activation_checkpointing",
    "steps_per_print",
    "wall_clock_breakdown",
    "_mlcost",
}


def test_deepspeed_config_keys_and_batch_arithmetic() -> None:
    cfg = json.loads(_files()["ds_config.json"])
    assert set(cfg) <= DEEPSPEED_KEYS
    plan = load_plan_file(GOLDEN / "plan_train.json")["plan"]
    assert cfg["train_batch_size"] == plan["global_batch"]
    assert cfg["train_batch_size"] == (
        cfg["train_micro_batch_size_per_gpu"] * cfg["gradient_accumulation_steps"] * plan["dp"]
    )
    assert cfg["zero_optimization"]["stage"] == plan["zero"]
    assert not (cfg["bf16"]["enabled"] and cfg["fp16"]["enabled"])


def test_deepspeed_parses_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("deepspeed", reason="deepspeed is not installed")
    import deepspeed.runtime.config as ds_config
    from deepspeed.runtime.config import DeepSpeedConfig

    cfg = json.loads(_files()["ds_config.json"])
    plan = load_plan_file(GOLDEN / "plan_train.json")["plan"]
    # DeepSpeed checks train_batch_size against the data-parallel world size it sees; outside a launched job
    # that is 1, so hand it the plan's DP through a model-parallel unit stub (its documented mpu interface)
    # and fake only the process-group boundary (the rank query) that a launched job would answer.
    monkeypatch.setattr(ds_config.dist, "get_rank", lambda *a, **k: 0)

    class Mpu:
        def get_data_parallel_world_size(self) -> int:
            return int(plan["dp"])

        def get_model_parallel_world_size(self) -> int:
            return int(plan["tp"]) * int(plan["pp"])

    ds = DeepSpeedConfig(cfg, mpu=Mpu())
    assert ds.train_batch_size == plan["global_batch"]
    assert ds.zero_optimization_stage == plan["zero"]
    assert ds.bfloat16_config.enabled is True


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("not json", "is not JSON"),
        ('{"kind": "estimate-train"}', "is not a plan"),
        ("[1, 2]", "is not a plan"),
        ('{"kind": "plan-train", "status": "infeasible", "plans": []}', "has no plans"),
        (
            '{"kind": "plan-train", "model": "gpt2", "tokens": 1, "plans": [{"device": "h100-sxm"}]}',
            "not a complete plan",
        ),
        (None, "not found"),
    ],
)
def test_bad_plan_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, needle: str
) -> None:
    path = tmp_path / "plan.json"
    if content is not None:
        path.write_text(content)
    out = tmp_path / "out"
    assert main(["export", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert not out.exists()
