"""Framework families are data: rows ``<device>/<family>`` of the efficiency catalog, chosen with
``framework=``; their extra terms (TP-communication overlap, memory terms) change the estimate."""

from __future__ import annotations

import pytest

from mlcost.catalog import builtin_catalog, get_catalog
from mlcost.errors import UnknownNameError
from mlcost.estimate import estimate_train
from mlcost.estimate.context import framework_families
from mlcost.spec import Cluster, TrainJob


def test_families_come_from_the_catalog() -> None:
    assert {"fsdp", "torchtitan", "megatron", "nemo", "maxtext"} <= set(framework_families(builtin_catalog()))


def test_unknown_family_suggests_the_close_one() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'nemo'"):
        estimate_train(
            get_catalog().model("gpt2"),
            TrainJob(tokens=1e9),
            Cluster(device="h100-sxm", count=8),
            framework="nemox",
        )


def test_tp_comm_overlap_hides_tp_communication() -> None:
    model = get_catalog().model("llama-2-70b")
    job = TrainJob(tokens=1e9, seq_len=4096, global_batch=64, tp=8, sequence_parallel=True, recompute="full")
    cluster = Cluster(device="h100-sxm", count=64)
    prof = builtin_catalog().efficiency("h100-sxm/nemo")
    assert prof.extra["tp_comm_overlap"] > 0
    with_overlap = estimate_train(model, job, cluster, profile=prof)
    without = estimate_train(model, job, cluster, profile=prof.replace(extra={}))
    assert with_overlap.time_breakdown_s["tp_comm_s"] < without.time_breakdown_s["tp_comm_s"]
    assert with_overlap.step_time_s < without.step_time_s


def test_memory_terms_of_a_family_change_only_memory() -> None:
    model = get_catalog().model("llama-3.1-8b")
    job = TrainJob(tokens=1e9, seq_len=8192, global_batch=16, micro_batch=2, zero=3, recompute="selective")
    cluster = Cluster(device="h100-96gb", count=8)
    prof = builtin_catalog().efficiency("h100-96gb/torchtitan")
    family = estimate_train(model, job, cluster, profile=prof)
    plain = estimate_train(model, job, cluster, profile=prof.replace(extra={"ring_rails": 8.0}))
    assert family.step_time_s == pytest.approx(plain.step_time_s)
    assert family.memory.activations != plain.memory.activations
