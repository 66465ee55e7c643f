"""Property-based fuzzing of every command's options and input files (issue #9 item 7).

Each test draws a command line (a subset of the command's flags, each with a plausible value or a hostile
one: negative, zero, NaN, inf, huge, wrong type, empty, binary) or an input file (random bytes, truncated or
mutated valid files) and asserts the contract in :mod:`tests.fuzz._contract`. Bounded: ``max_examples`` per
test keeps the whole module near a minute on 2 cores.
"""

from __future__ import annotations

#: Examples per command; ``MLCOST_FUZZ_EXAMPLES`` raises it for a long local run.
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz._contract import hostile, invoke, options

N = int(os.environ.get("MLCOST_FUZZ_EXAMPLES", "80"))
FUZZ = settings(
    max_examples=N,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


def ints(lo: int, hi: int) -> st.SearchStrategy[str]:
    return st.integers(lo, hi).map(str)


def floats(lo: float, hi: float) -> st.SearchStrategy[str]:
    return st.floats(lo, hi, allow_nan=False).map(lambda x: f"{x:g}")


def pick(*values: str) -> st.SearchStrategy[str]:
    return st.sampled_from(values)


MODELS = pick("llama-3.1-8b", "gpt2", "bert-base", "mixtral-8x7b", "llama-3.1-70b", "LLAMA-3.1-8B", "nope")
DEVICES = pick("h100-sxm", "a100-80gb", "cpu-epyc-2vcpu", "v100-16gb", "h100", "local")
PRICE = {"--price-usd-per-h": floats(0, 50), "--pue": floats(1, 2), "--carbon-kg-per-kwh": floats(0, 1)}
DURATION = pick("30d", "12h", "90m", "2y", "6mo", "1w", "45s")
TOKENS = pick("1e9", "1e12", "300B", "2T", "7k", "1e15")

ESTIMATE_TRAIN = {
    "--model": MODELS,
    "--device": DEVICES,
    "--gpus": ints(1, 4096),
    "--gpus-per-node": ints(1, 16),
    "--tp": pick("1", "2", "4", "8"),
    "--pp": pick("1", "2", "4"),
    "--virtual-stages": pick("1", "2"),
    "--micro-batch": ints(1, 8),
    "--global-batch": ints(1, 4096),
    "--seq-len": ints(1, 8192),
    "--zero": ints(0, 3),
    "--goodput": floats(0.01, 1),
    "--precision": pick("bf16", "fp16", "fp32", "tf32", "fp8", "Bf16"),
    "--optimizer": pick("adamw", "sgd"),
    "--recompute": pick("none", "selective", "full"),
    "--tokens": TOKENS,
    "--pricing": pick("on-demand", "spot"),
    **PRICE,
}
ESTIMATE_SERVE = {
    "--model": MODELS,
    "--device": DEVICES,
    "--gpus": ints(1, 16),
    "--tp": pick("1", "2", "4", "8"),
    "--batch": ints(1, 512),
    "--prompt-len": ints(1, 200_000),
    "--output-len": ints(1, 4096),
    "--weight-precision": pick("bf16", "fp8", "int8", "int4", "fp32"),
    "--kv-precision": pick("bf16", "fp8", "int8"),
    **PRICE,
}
ESTIMATE_SERVE_SIM = {
    "--model": pick("llama-3.1-8b", "gpt2", "mixtral-8x7b"),
    "--device": DEVICES,
    "--tp": pick("1", "2"),
    "--prompt-tokens": ints(1, 4096),
    "--output-tokens": ints(1, 256),
    "--prompt-dist": pick("fixed", "uniform", "exponential", "lognormal"),
    "--output-dist": pick("fixed", "uniform", "exponential", "lognormal"),
    "--prefix-share": floats(0, 0.99),
    "--prefix-blocks": pick("shared", "per-sequence", "Shared", "both"),
    "--max-num-batched-tokens": pick("512", "2048", "8192"),
    "--max-num-seqs": ints(1, 512),
    "--kv-block-size": pick("1", "16", "32", "1000000000"),
    "--gpu-memory-fraction": floats(0.05, 1),
    "--spec-draft-tokens": ints(0, 8),
    "--spec-acceptance": floats(0, 0.99),
    "--engine": pick("vllm", "sglang", "trtllm", "hf"),
    "--seed": ints(0, 5),
    **PRICE,
}
PLAN_SERVE_SLO = {
    "--prompt-tokens": ints(1, 8192),
    "--output-tokens": ints(1, 1024),
    "--ttft-p90-ms": floats(1, 10_000),
    "--itl-p90-ms": floats(1, 1000),
    "--weight-precisions": pick("bf16", "bf16,int8", "int4"),
    "--engine": pick("vllm", "trtllm"),
    "--seed": ints(0, 3),
    "--prefix-share": floats(0, 0.99),
    "--prefix-blocks": pick("shared", "per-sequence"),
}
PLAN_TRAIN = {
    "--deadline": DURATION,
    "--budget-usd": floats(1, 1e8),
    "--max-devices": ints(1, 2048),
    "--max-co2-kg": floats(1, 1e7),
    "--objective": pick("cost", "time", "energy", "co2", "Time"),
    "--top": ints(1, 10),
    "--seq-len": ints(1, 8192),
    "--global-batch": ints(1, 4096),
    "--precisions": pick("bf16", "bf16,fp8", "fp16"),
    "--devices": pick("h100-sxm", "a100-80gb,h100-sxm", "h200"),
    "--counts": pick("8", "8,16,64", "1,2"),
    "--spot-interruptions-per-h": floats(0, 1),
    "--restart-overhead": DURATION,
    "--checkpoint-interval": DURATION,
}
PLAN_SERVE = {
    "--requests-per-s": floats(0.01, 1000),
    "--prompt-len": ints(1, 8192),
    "--output-len": ints(1, 4096),
    "--ttft-ms": floats(1, 10_000),
    "--tpot-ms": floats(1, 1000),
    "--weight-precisions": pick("bf16", "bf16,int8", "int4"),
    "--devices": pick("h100-sxm", "a100-80gb,l4"),
    "--top": ints(1, 10),
    "--prefix-share": floats(0, 0.99),
}
TCO = {
    "--horizon": DURATION,
    "--prompt-len": ints(1, 4096),
    "--output-len": ints(1, 1024),
    "--train-gpus": ints(1, 1024),
    "--seq-len": ints(128, 8192),
    "--global-batch": ints(1, 2048),
    "--train-precision": pick("bf16", "fp8"),
    "--serve-precision": pick("bf16", "int8"),
    "--serve-tp": pick("1", "2", "4", "8"),
    "--max-batch": ints(1, 128),
    "--tpot-ms": floats(1, 500),
    "--pricing": pick("on-demand", "spot"),
    "--discount-rate": floats(0, 0.5),
    "--revenue-per-million-tokens-usd": floats(0, 10),
}
MEASURE_TRAIN = {
    "--micro-batch": ints(1, 4),
    "--global-batch": ints(1, 8),
    "--seq-len": ints(1, 64),
    "--precision": pick("fp32", "bf16", "fp16"),
    "--recompute": pick("none", "full"),
    "--layers": ints(1, 2),
    "--d-model": pick("32", "64"),
    "--heads": pick("1", "2", "4"),
    "--vocab": ints(2, 256),
    "--steps": ints(1, 4),
    "--warmup": ints(0, 2),
    "--strategy": pick("baseline", "bf16", "compile", "bf16+compile", "nonsense"),
    **PRICE,
    "--seed": ints(0, 5),
}
RUNS = {
    "--limit": ints(1, 100),
    "--status": pick("completed", "failed", "running"),
    "--kind": pick("train", "serve"),
}


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ledger.db"
    monkeypatch.setenv("MLCOST_LEDGER", str(path))
    monkeypatch.setenv("MLCOST_PROFILE_DIR", str(tmp_path / "profiles"))
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MLCOST_CATALOG"):
        monkeypatch.delenv(var, raising=False)
    return path


@FUZZ
@given(data=st.data())
def test_estimate_train(data: st.DataObject, ledger: Path) -> None:
    invoke(["estimate", "train", *options(data.draw, ESTIMATE_TRAIN), "--json"], ledger)


@FUZZ
@given(data=st.data())
def test_estimate_serve(data: st.DataObject, ledger: Path) -> None:
    invoke(["estimate", "serve", *options(data.draw, ESTIMATE_SERVE), "--json"], ledger)


@settings(FUZZ, max_examples=max(10, N // 2))
@given(
    data=st.data(),
    traffic=st.sampled_from(["--rps", "--concurrency"]),
    chunking=st.sampled_from(["--chunked-prefill", "--no-chunked-prefill"]),
)
def test_estimate_serve_continuous(data: st.DataObject, traffic: str, chunking: str, ledger: Path) -> None:
    value = data.draw(st.one_of(floats(0.01, 1000) if traffic == "--rps" else ints(1, 512), hostile))
    argv = ["estimate", "serve", traffic, value, "--requests", "60", chunking]
    invoke([*argv, *options(data.draw, ESTIMATE_SERVE_SIM), "--json"], ledger)


@settings(FUZZ, max_examples=max(5, N // 8))
@given(data=st.data(), rps=st.one_of(floats(0.1, 50), hostile))
def test_plan_serve_slo(data: st.DataObject, rps: str, ledger: Path) -> None:
    argv = ["plan", "serve", "--model", "llama-3.1-8b", "--rps", rps, "--devices", "h100-sxm,l4"]
    argv += ["--sim-requests", "200", "--itl-p90-ms", data.draw(st.one_of(floats(5, 200), hostile))]
    invoke([*argv, *options(data.draw, PLAN_SERVE_SLO), "--json"], ledger)


@FUZZ
@given(data=st.data(), tokens=st.one_of(TOKENS, hostile))
def test_plan_train(data: st.DataObject, tokens: str, ledger: Path) -> None:
    argv = ["plan", "train", "--model", "llama-3.1-8b", "--tokens", tokens, "--devices", "h100-sxm"]
    invoke([*argv, *options(data.draw, PLAN_TRAIN), "--json"], ledger)


@FUZZ
@given(data=st.data(), traffic=st.sampled_from(["--requests-per-s", "--tokens-per-day"]))
def test_plan_serve(data: st.DataObject, traffic: str, ledger: Path) -> None:
    value = data.draw(st.one_of(floats(0.1, 100) if traffic == "--requests-per-s" else TOKENS, hostile))
    argv = ["plan", "serve", "--model", data.draw(MODELS), traffic, value]
    invoke([*argv, *options(data.draw, PLAN_SERVE), "--json"], ledger)


@settings(FUZZ, max_examples=max(10, N // 2))
@given(data=st.data(), sizes=st.sampled_from(["1b,3b", "350m,7b", "0m", "llama-3.1-8b,3b", ",", "1e400b"]))
def test_tco(data: st.DataObject, sizes: str, ledger: Path) -> None:
    argv = ["tco", "--models", sizes, "--train-tokens", data.draw(st.one_of(TOKENS, hostile))]
    argv += ["--tokens-per-day", data.draw(st.one_of(TOKENS, hostile))]
    invoke([*argv, *options(data.draw, TCO), "--json"], ledger)


@FUZZ
@given(data=st.data())
def test_measure_train_dry_run(data: st.DataObject, ledger: Path) -> None:
    argv = ["measure", "train", "--model", data.draw(pick("gpt2", "llama-3.1-8b", "nope")), "--dry-run"]
    invoke([*argv, *options(data.draw, MEASURE_TRAIN), "--json"], ledger)


@FUZZ
@given(data=st.data(), run_id=st.one_of(st.text(max_size=10), st.sampled_from(["", "abc", "0" * 32, "zz"])))
def test_runs(data: st.DataObject, run_id: str, ledger: Path) -> None:
    invoke(["runs", *options(data.draw, RUNS), "--json"], ledger)
    invoke(["runs", "show", run_id, "--json"], ledger)


# ------------------------------------------------------------------------------------------ input files

ALLOCATE_VALID = st.one_of(st.floats(0, 1000, allow_nan=False).map(repr), st.integers(0, 500).map(str))
ALLOCATE_HOSTILE = st.one_of(
    st.sampled_from(["0", "-1", "nan", "inf", "-inf", "1e308", '"abc"', "true", "[]", "{}", "1e-300"]),
    st.integers(-(2**40), 2**40).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)


@st.composite
def allocate_toml(draw: st.DrawFn) -> bytes:
    """A problem file: valid two times in three; otherwise with hostile values, keys or a truncation."""
    bad = draw(st.integers(0, 2)) == 0

    def value(valid: st.SearchStrategy[str]) -> str:
        return draw(ALLOCATE_HOSTILE if bad and draw(st.integers(0, 4)) == 0 else valid)

    objective = draw(
        st.sampled_from(['"min_cost"', '"max_performance"'] + (['"max_fun"', "3"] if bad else []))
    )
    lines = [f"objective = {objective}"]
    for k in range(draw(st.sampled_from([1, 2, 3, 5, 40] + ([0] if bad else [])))):
        lines += ["[[resource]]", f'name = "r{k}"']
        lines.append(f"unit_cost = {value(ALLOCATE_VALID)}")
        lines.append(f"performance = {value(ALLOCATE_VALID)}")
        if draw(st.booleans()):
            lines.append(f"min_units = {value(st.integers(0, 10).map(str))}")
        if draw(st.booleans()):
            lines.append(f"max_units = {value(st.integers(10, 1000).map(str))}")
        if draw(st.booleans()):
            lines.append("integer = " + draw(st.sampled_from(["true", "false"] + (["1"] if bad else []))))
        if bad and draw(st.integers(0, 10)) == 0:
            lines.append(draw(st.sampled_from(["cost", "nmae", "perf"])) + " = 1")
    lines.append("[constraints]")
    for key in ("min_performance", "max_units", "max_cost"):
        if draw(st.booleans()):
            lines.append(f"{key} = {value(ALLOCATE_VALID)}")
    text = "\n".join(lines).encode()
    if bad and draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))]
    return text


@FUZZ
@given(
    content=st.one_of(allocate_toml(), allocate_toml(), allocate_toml(), st.binary(max_size=200)),
    yaml=st.booleans(),
)
def test_allocate_files(content: bytes, yaml: bool, ledger: Path, tmp_path: Path) -> None:
    path = tmp_path / "problem.toml"
    path.write_bytes(content)
    if yaml:  # the same problem as YAML (mutations and binary stay as they are)
        path = tmp_path / "problem.yaml"
        try:
            import tomllib
            import yaml as pyyaml

            path.write_text(pyyaml.safe_dump(tomllib.loads(content.decode())))
        except Exception:
            path.write_bytes(content)
    invoke(["allocate", str(path), "--json"], ledger)


CATALOG_VALUES = st.one_of(
    st.sampled_from(["0", "-1", "nan", "inf", "1e308", '"x"', "true", "900", "80", "0.5"]),
    st.floats(allow_nan=False).map(repr),
)


@st.composite
def catalog_toml(draw: st.DrawFn) -> bytes:
    fields = {
        "peak_bf16_tflops": "900",
        "memory_gb": "80",
        "mem_bw_tb_per_s": "3.35",
        "tdp_w": "700",
        "devices_per_node": "8",
        "intra_node_gb_per_s": "450",
        "inter_node_gb_per_s": "50",
    }
    lines = ["[[device]]", 'id = "h100-sxm"', 'name = "x"', 'vendor = "nvidia"', 'kind = "gpu"']
    for key, value in fields.items():
        if draw(st.integers(0, 8)) == 0:
            value = draw(CATALOG_VALUES)
        lines.append(f"{key} = {value}")
    lines += ['source = "fuzz"', "date = 2026-01-01"]
    if draw(st.booleans()):
        lines += [
            "[[price]]",
            'device = "h100-sxm"',
            'provider = "fz"',
            'region = "r"',
            'pricing = "on-demand"',
        ]
        price = draw(CATALOG_VALUES) if draw(st.integers(0, 4)) == 0 else draw(floats(0.1, 100))
        lines += [f"usd_per_device_h = {price}", 'source = "fuzz"', 'date = "2026-12-01"']
    text = "\n".join(lines).encode()
    cut = draw(st.integers(1, 7))
    return text[: len(text) * cut // 8] if draw(st.integers(0, 5)) == 0 else text


@FUZZ
@given(
    content=st.one_of(catalog_toml(), catalog_toml(), st.binary(max_size=120)),
    command=st.sampled_from(["estimate", "devices"]),
)
def test_catalog_files(content: bytes, command: str, ledger: Path, tmp_path: Path) -> None:
    from mlcost.catalog import clear_cache

    path = tmp_path / "catalog.toml"
    path.write_bytes(content)
    clear_cache()
    argv = (
        ["estimate", "train", "--device", "h100-sxm", "--gpus", "8"] if command == "estimate" else ["devices"]
    )
    invoke([*argv, "--catalog", str(path), "--json"], ledger)
    clear_cache()
