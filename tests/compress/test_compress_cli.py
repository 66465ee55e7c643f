"""`mlcost compress`: bad input is one line and exit 2; --json is the documented contract (docs/json.md)."""

import json
from pathlib import Path

import pytest

from mlcost.cli.main import main

#: Top-level keys documented in docs/json.md under `mlcost compress --json`.
TOP_KEYS = {
    "model",
    "task",
    "hardware",
    "batch_sizes",
    "rounds",
    "started_at",
    "price",
    "targets",
    "variants",
    "pareto_front",
    "choice",
    "elapsed_s",
    "ledger_run_ids",
}
VARIANT_KEYS = {
    "name",
    "method",
    "status",
    "reason",
    "recipe",
    "precision",
    "notes",
    "isa_note",
    "build_time_s",
    "training",
    "batch_size",
    "speeds",
    "speedup",
    "throughput_per_s",
    "size_bytes",
    "size_ratio",
    "peak_memory_bytes",
    "peak_memory_method",
    "quality",
    "cost",
    "targets",
    "verdict",
}


def test_json_contract_on_a_hugging_face_directory(
    tiny_bert_dir: Path, labelled_jsonl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "compress",
            "--model",
            str(tiny_bert_dir),
            "--data",
            str(labelled_jsonl),
            "--methods",
            "int8-dynamic,prune-heads:0.5,bf16",
            "--rounds",
            "3",
            "--batch-sizes",
            "1,8",
            "--device",
            "h100-sxm",
            "--json",
        ]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == TOP_KEYS
    ok = [r for r in report["variants"] if r["status"] == "ok"]
    for r in ok:
        assert set(r) >= VARIANT_KEYS
    assert report["task"]["primary_metric"] == "accuracy"
    target = ok[0]["targets"][0]
    assert target["device"] == "h100-sxm" and target["status"] == "ok" and target["requests_per_s"] > 0
    assert len(report["ledger_run_ids"]) == len(ok)


def test_text_output_has_table_verdicts_and_choice(
    tiny_bert_dir: Path, labelled_jsonl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "compress",
                "--model",
                str(tiny_bert_dir),
                "--data",
                str(labelled_jsonl),
                "--methods",
                "int8-dynamic",
                "--rounds",
                "3",
                "--batch-sizes",
                "4",
                "--no-ledger",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "verdicts:" in out and "choice:" in out and "int8-dynamic" in out and "machine-hours" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--example", "minilm", "--model", "x"], "exactly one of --example"),
        (["--example", "resnet"], "unknown example 'resnet'"),
        (["--example", "digits-cnn", "--methods", "int9"], "unknown method 'int9'"),
        (["--example", "digits-cnn", "--methods", "prune-ffn:1.5"], "between 0 and 1"),
        (["--example", "digits-cnn", "--batch-sizes", "0"], "--batch-sizes"),
        (["--example", "digits-cnn", "--rounds", "1"], "--rounds"),
        (["--example", "digits-cnn", "--device", "h100-sxmm"], "unknown device"),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compress", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_directory_without_weights_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    assert main(["compress", "--model", str(tmp_path), "--data", "x.jsonl"]) == 2
    assert "has no weights" in capsys.readouterr().err


def test_empty_data_file_exits_2_and_writes_nothing(
    tiny_bert_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    db = tmp_path / "l.db"
    assert (
        main(["compress", "--model", str(tiny_bert_dir), "--data", str(empty), "--ledger", f"sqlite:///{db}"])
        == 2
    )
    assert "the file is empty" in capsys.readouterr().err
    assert not db.exists()


def test_hub_id_offline_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compress", "--model", "no-such-org/no-such-model", "--data", "x.jsonl"]) == 2
    assert "cannot load it from the Hugging Face hub" in capsys.readouterr().err
