"""Notes estimate_train adds to its assumptions."""

from __future__ import annotations

from mlcost.catalog import get_catalog


def test_slow_precision_gets_a_hint() -> None:
    """fp32 on an H100 (67 vs 989 dense TFLOP/s in bf16, catalog): the assumptions point at bf16; bf16
    gets no such note (fp8 is not offered: it is not a drop-in switch)."""
    from mlcost.estimate import estimate_train
    from mlcost.spec import Cluster, TrainJob

    model = get_catalog().model("gpt2")
    job = TrainJob(tokens=1e6, seq_len=128, global_batch=8, micro_batch=1, precision="fp32")

    def hint(device: str, precision: str) -> str | None:
        est = estimate_train(model, job.replace(precision=precision), Cluster(device=device, count=8))
        notes = [a for a in est.assumptions if a.name == "slow_precision"]
        return str(notes[0].source) if notes else None

    assert "try --precision bf16" in (hint("h100-sxm", "fp32") or "")
    assert hint("h100-sxm", "bf16") is None
