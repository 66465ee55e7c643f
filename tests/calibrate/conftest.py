from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlcost import context
from mlcost.calibrate.microbench import MicrobenchResult


@pytest.fixture(autouse=True)
def profile_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every calibrate test saves into its own directory and sees a fresh catalog."""
    d = tmp_path / "profile"
    monkeypatch.setenv("MLCOST_PROFILE_DIR", str(d))
    context.invalidate()
    yield d
    context.invalidate()


@pytest.fixture
def fake_microbench() -> MicrobenchResult:
    """Plausible figures of a 2-core AVX2 CPU (no torch needed)."""
    peak = 30e9
    return MicrobenchResult(
        device="cpu",
        threads=2,
        matmul_flops_per_s={
            "float32": {
                n: peak * 0.95 * n / (n + 150.0) / (0.95 * 2048 / 2198.0) for n in (128, 256, 512, 1024, 2048)
            },
            "bfloat16": {256: 0.9e9, 512: 0.8e9},
        },
        copy_bytes_per_s=10e9,
        elementwise_bytes_per_s={"add": 8e9, "gelu": 1.5e9, "layer_norm": 2e9, "softmax": 1.5e9},
        allreduce_bus_bytes_per_s={65536: 0.05e9, 16777216: 0.8e9},
        seconds=1.0,
    )
