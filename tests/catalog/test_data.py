"""The shipped catalog files: every file loads and validates, every row has provenance, and the numbers
that the estimator's golden tests rely on are the published ones."""

from __future__ import annotations

import csv

import pytest
import tomllib

from mlcost.catalog import Catalog, get_catalog
from mlcost.catalog.loader import DATA_DIR
from mlcost.spec import ModelSpec

REQUIRED_DEVICES = {
    "a100-40gb", "a100-80gb", "a100-80gb-pcie", "h100-sxm", "h100-pcie", "h200", "h800", "l40s", "l4", "a10g",
    "t4", "v100-16gb", "v100-32gb", "mi300x", "tpu-v4", "tpu-v5e", "cpu-epyc-2vcpu",
}  # fmt: skip
REQUIRED_MODELS = {
    "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3.1-8b",
    "llama-3.1-70b", "llama-3.1-405b", "mistral-7b", "mixtral-8x7b", "qwen2.5-7b", "bert-base",
}  # fmt: skip
# Narayanan et al. 2021, Table 1: (heads, hidden, layers)
MEGATRON = {
    "1.7b": (24, 2304, 24), "3.6b": (32, 3072, 30), "7.5b": (32, 4096, 36), "18.4b": (48, 6144, 40),
    "39.1b": (64, 8192, 48), "76.1b": (80, 10240, 60), "145.6b": (96, 12288, 80), "310.1b": (128, 16384, 96),
    "529.6b": (128, 20480, 105), "1t": (160, 25600, 128),
}  # fmt: skip


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return Catalog.from_paths()


def test_every_shipped_file_loads_and_validates(cat: Catalog) -> None:
    assert {d.id for d in cat.devices()} >= REQUIRED_DEVICES
    assert {m.name for m in cat.models()} >= REQUIRED_MODELS
    assert cat.prices() and cat.providers() == [
        "aws",
        "azure",
        "coreweave",
        "gcp",
        "lambda",
        "nebius",
        "oci",
        "runpod",
        "vast",
    ]
    for profile in ("default-gpu", "default-tpu", "default-cpu"):
        assert cat.profiles() and any(p.device == profile for p in cat.profiles())
    for device in cat.devices():
        assert cat.efficiency(device.id).device in {device.id, f"default-{device.kind}", "default-gpu"}


@pytest.mark.parametrize("name", ["devices.csv", "prices.csv", "carbon.csv", "providers.csv"])
def test_every_csv_row_has_source_and_date(name: str) -> None:
    with (DATA_DIR / name).open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows
    for row in rows:
        assert row["source"].strip() and len(row["date"]) == 10


def test_every_model_row_has_source_and_date(cat: Catalog) -> None:
    with (DATA_DIR / "models.toml").open("rb") as fh:
        tables = tomllib.load(fh)["model"]
    assert len(tables) == len(cat.models())
    for row in cat.model_rows():
        assert row.source and row.date == row.date[:10]
        assert row.spec.source == row.source


def test_every_preset_builds_and_round_trips(cat: Catalog) -> None:
    for spec in cat.models():
        assert isinstance(spec, ModelSpec)
        assert ModelSpec.from_dict(spec.to_dict()) == spec
        assert ModelSpec.from_preset(spec.name, cat) == spec


def test_dense_peaks_from_reference(cat: Catalog) -> None:
    # docs/reference/hardware.md (dense, never 2:4 sparse)
    expect: dict[str, dict[str, float]] = {
        "a100-80gb": {"bf16": 312, "tf32": 156, "fp32": 19.5},
        "h100-sxm": {"bf16": 989, "fp8": 1979, "tf32": 494.5, "fp32": 67},
        "h100-pcie": {"bf16": 756, "fp8": 1513},
        "mi300x": {"bf16": 1307, "fp8": 2610},
        "l4": {"bf16": 121, "fp32": 30.3},
        "tpu-v5e": {"bf16": 197},
    }
    for device, peaks in expect.items():
        for precision, tflops in peaks.items():
            assert cat.device(device).peak_for(precision) == pytest.approx(tflops * 1e12), (device, precision)
    assert cat.device("a100-80gb").inter_node_bw_bytes_per_s == 25e9  # 200 Gb/s HDR per GPU
    assert cat.device("h100-sxm").inter_node_bw_bytes_per_s == 50e9  # 400 Gb/s NDR per GPU
    assert cat.device("h200").memory_bytes == 141e9


def test_no_device_lists_sparse_peaks(cat: Catalog) -> None:
    for device in cat.devices():
        bf16 = device.peak_for("bf16") or device.peak_for("fp16")
        fp8 = device.peak_for("fp8")
        if bf16 and fp8:
            assert fp8 <= 2.05 * bf16, device.id


def test_prices_from_reference(cat: Catalog) -> None:
    """Per-device-hour prices derived from rows of the reference snapshot (../shared/reference/prices, the
    SkyPilot catalog at the commits named in each row's source)."""
    # aws.csv: p5.48xlarge (8 x H100) eu-north-1, 58.8928/h on-demand in all 3 zones, spot 28.3188 in eun1-az3
    aws = cat.price("h100-sxm", "aws", "eu-north-1")
    assert (aws.usd_per_device_h, aws.instance) == (pytest.approx(58.8928 / 8), "p5.48xlarge/8")
    assert cat.price("h100-sxm", "aws", "eu-north-1", "spot").usd_per_device_h == pytest.approx(28.3188 / 8)
    # gcp.csv: host a3-highgpu-8g 9.46006/h + accelerator row 8 x H100 33.60609/h in us-central1-a
    gcp = [
        p
        for p in cat.prices("h100-sxm", "gcp", "us-central1", "on-demand")
        if p.instance == "a3-highgpu-8g/8"
    ]
    assert gcp[0].usd_per_device_h == pytest.approx((9.46006 + 33.60609) / 8, rel=1e-5)
    # gcp.csv: tpu-v5litepod-4 slice 4.8/h in us-central1-a: 4 chips
    assert cat.price("tpu-v5e", "gcp", "us-central1").usd_per_device_h == pytest.approx(1.2)
    # lambda.csv: gpu_8x_h100_sxm5 31.92/h in every region
    assert cat.price("h100-sxm", "lambda", "us-east-1").usd_per_device_h == pytest.approx(31.92 / 8)
    for row in cat.prices():
        assert row.provider == "coreweave" or "skypilot-org/skypilot-catalog@" in row.source


@pytest.mark.parametrize(
    ("name", "layers", "d_model", "heads", "kv", "d_ff", "vocab", "tied"),
    [
        ("gpt2", 12, 768, 12, 12, 3072, 50257, True),
        ("gpt2-xl", 48, 1600, 25, 25, 6400, 50257, True),
        ("llama-2-7b", 32, 4096, 32, 32, 11008, 32000, False),
        ("llama-2-70b", 80, 8192, 64, 8, 28672, 32000, False),
        ("llama-3.1-8b", 32, 4096, 32, 8, 14336, 128256, False),
        ("llama-3.1-405b", 126, 16384, 128, 8, 53248, 128256, False),
        ("mistral-7b", 32, 4096, 32, 8, 14336, 32000, False),
        ("mixtral-8x7b", 32, 4096, 32, 8, 14336, 32000, False),
        ("qwen2.5-7b", 28, 3584, 28, 4, 18944, 152064, False),
        ("bert-base", 12, 768, 12, 12, 3072, 30522, True),
    ],
)
def test_preset_shapes(
    cat: Catalog, name: str, layers: int, d_model: int, heads: int, kv: int, d_ff: int, vocab: int, tied: bool
) -> None:
    m = cat.model(name)
    assert (m.n_layers, m.d_model, m.n_heads, m.kv_heads, m.d_ff, m.vocab_size) == (
        layers,
        d_model,
        heads,
        kv,
        d_ff,
        vocab,
    )
    assert m.tied_embeddings is tied


def test_family_specific_flags(cat: Catalog) -> None:
    assert cat.model("mixtral-8x7b").n_experts == 8 and cat.model("mixtral-8x7b").experts_top_k == 2
    qwen = cat.model("qwen2.5-7b")
    assert qwen.qkv_bias and not qwen.out_bias
    bert = cat.model("bert-base")
    assert bert.kind == "encoder" and bert.pooler and bert.embedding_norm and not bert.final_norm
    assert (bert.type_vocab_size, bert.max_seq_len, bert.position, bert.norm) == (
        2,
        512,
        "learned",
        "layernorm",
    )
    assert all(cat.model(n).dropout for n in ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"))
    assert not any(
        cat.model(n).dropout for n in REQUIRED_MODELS if n.startswith(("llama", "mistral", "mixtral", "qwen"))
    )


@pytest.mark.parametrize(("label", "shape"), MEGATRON.items())
def test_megatron_presets(cat: Catalog, label: str, shape: tuple[int, int, int]) -> None:
    m = cat.model(f"megatron-gpt-{label}")
    heads, hidden, layers = shape
    assert (m.n_heads, m.d_model, m.n_layers, m.d_ff) == (heads, hidden, layers, 4 * hidden)
    assert (m.vocab_size, m.max_seq_len, m.mlp, m.norm, m.position) == (
        51200,
        2048,
        "gelu",
        "layernorm",
        "learned",
    )
    assert m.tied_embeddings and m.qkv_bias and m.out_bias and m.mlp_bias and m.dropout


def test_default_catalog_is_the_package_data() -> None:
    assert {d.id for d in get_catalog().devices()} >= REQUIRED_DEVICES
