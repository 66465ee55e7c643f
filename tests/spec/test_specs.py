"""Spec dataclasses: presets build, round-trip, validate and suggest close names."""

from __future__ import annotations

import pytest

from mlcost.catalog import Catalog
from mlcost.errors import SpecError, UnknownNameError
from mlcost.spec import Cluster, ModelSpec, ServeJob, TrainJob


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return Catalog.from_paths()


def test_every_preset_builds_a_model_spec(cat: Catalog) -> None:
    for spec in cat.models():
        built = ModelSpec.from_preset(spec.name, cat)
        assert isinstance(built, ModelSpec) and built == spec
        assert built.dim_head * built.n_heads == built.d_model or built.head_dim is not None
        assert built.n_heads % built.kv_heads == 0


def test_unknown_preset_suggests(cat: Catalog) -> None:
    with pytest.raises(UnknownNameError) as info:
        ModelSpec.from_preset("mistral-7", cat)
    assert "mistral-7b" in info.value.suggestions
    assert "config.json" in str(info.value)


def test_from_dict_rejects_unknown_field_with_suggestion(cat: Catalog) -> None:
    data = cat.model("gpt2").to_dict()
    data["n_layer"] = data.pop("n_layers")
    with pytest.raises(SpecError, match="did you mean 'n_layers'"):
        ModelSpec.from_dict(data)


def test_model_validation() -> None:
    base = dict(
        name="x", kind="decoder", n_layers=2, d_model=64, n_heads=4, d_ff=128, vocab_size=10, max_seq_len=8
    )
    with pytest.raises(SpecError, match="multiple of n_kv_heads"):
        ModelSpec(**base, n_kv_heads=3)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="experts_top_k"):
        ModelSpec(**base, n_experts=4, experts_top_k=5)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="did you mean 'swiglu'"):
        ModelSpec(**base, mlp="swigelu")  # type: ignore[arg-type]


def test_jobs_and_cluster_round_trip() -> None:
    job = TrainJob(tokens=1e9, global_batch=8, micro_batch=2)
    assert TrainJob.from_dict(job.to_dict()) == job
    assert job.tokens_per_step == 8 * 2048
    serve = ServeJob(prompt_len=10, output_len=5)
    assert serve.context_len == 15 and ServeJob.from_dict(serve.to_dict()) == serve
    cluster = Cluster(device="h100-sxm", count=16, pricing="spot")
    assert Cluster.from_dict(cluster.to_dict()) == cluster
    with pytest.raises(SpecError):
        Cluster(device="h100-sxm", pue=0.9)


def test_cluster_device_ids_exist_in_catalog(cat: Catalog) -> None:
    cluster = Cluster(device="a100-80gb", count=8)
    assert cat.device(cluster.device).devices_per_node == 8
