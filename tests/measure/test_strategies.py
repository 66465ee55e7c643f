from __future__ import annotations

import pytest

from mlcost.errors import SpecError, UnknownNameError
from mlcost.measure.strategies import LEVERS, judge, parse_strategy, precision_support
from tests.measure.test_runner_specs import TINY_GPT2


def test_parse_composes_levers():
    s = parse_strategy("bf16+compile+grad-accum=4+fused+workers=2")
    assert (s.precision, s.compile, s.grad_accum, s.optimizer_impl, s.workers) == (
        "bf16",
        True,
        4,
        "fused",
        2,
    )
    assert s.name == "bf16+compile+grad-accum=4+fused+workers=2"
    assert parse_strategy("baseline").name == "baseline"
    assert parse_strategy("baseline+checkpointing").name == "checkpointing"


def test_parse_errors_suggest():
    with pytest.raises(UnknownNameError, match="bf16"):
        parse_strategy("bf61")
    for bad in ("bf16+fp16", "grad-accum=x", "grad-accum=0", "compile=3", "ddp+fsdp"):
        with pytest.raises(SpecError):
            parse_strategy(bad)


def test_every_lever_is_documented():
    for lever in LEVERS.values():
        assert lever.description and lever.pays_when


def test_precision_support_is_honest_on_this_cpu():
    """The answer this CPU's detected ISA implies: bf16 units with AVX512_BF16 or AMX, none otherwise."""
    from mlcost.catalog.host import detect_host

    ok, why = precision_support("fp32", "cpu")
    assert ok
    host = detect_host()
    ok, why = precision_support("bf16", "cpu")
    assert ok is (host.isa in ("avx512_bf16", "amx")), (host.isa, why)
    assert ("CPU has" in why) if ok else ("no bf16 units" in why)
    ok, why = precision_support("fp16", "cpu")
    assert ok is bool(host.flags & {"avx512_fp16", "amx_fp16"}), why


@pytest.mark.parametrize(
    ("fixture", "bf16", "fp16"),
    [("epyc_avx2.txt", False, False), ("epyc_zen4_avx512.txt", True, False), ("xeon_amx.txt", True, True)],
)
def test_precision_support_follows_the_hosts_flags(monkeypatch, fixture, bf16, fp16):
    from pathlib import Path

    from mlcost.catalog import parse_cpuinfo
    from mlcost.measure import strategies

    text = (Path(__file__).resolve().parents[1] / "fixtures" / "cpuinfo" / fixture).read_text()
    monkeypatch.setattr(strategies, "cpu_flags", lambda: set(parse_cpuinfo(text).flags))
    assert precision_support("bf16", "cpu")[0] is bf16
    assert precision_support("fp16", "cpu")[0] is fp16


def test_verdicts():
    base = {"tokens_per_s": 1000.0, "step_time_s": 0.1, "tokens_per_step": 100, "peak_memory_bytes": 1000}
    slow = {**base, "tokens_per_s": 147.0}
    v = judge("bf16", slow, base, device="cpu")
    if not precision_support("bf16", "cpu")[0]:
        assert not v.pays and "6.8× slower" in v.reason and "no bf16 units" in v.reason
    v = judge(
        "compile", {**base, "tokens_per_s": 1770.0, "step_time_s": 0.1 / 1.77, "compile_time_s": 87.0}, base
    )
    assert v.pays and "steps" in v.reason
    v = judge(
        "compile",
        {**base, "tokens_per_s": 1770.0, "step_time_s": 0.1 / 1.77, "compile_time_s": 87.0},
        base,
        horizon_steps=100,
    )
    assert not v.pays
    v = judge("checkpointing", {**base, "tokens_per_s": 800.0, "peak_memory_bytes": 600}, base)
    assert v.pays and "memory" in v.reason
    v = judge("checkpointing", {**base, "tokens_per_s": 800.0}, base)
    assert not v.pays
    assert not judge("fused", {**base, "tokens_per_s": 1010.0}, base).pays  # within noise
    assert judge("fused", {**base, "tokens_per_s": 1200.0}, base).pays
    assert not judge("fused", base, base, status="failed").pays


def _tiny_model():
    pytest.importorskip("transformers")
    from mlcost.measure.torch_models import build_model

    return build_model(TINY_GPT2)


def test_prepare_applies_checkpointing_autocast_and_optimizer():
    torch = pytest.importorskip("torch")
    from mlcost.measure.strategies import prepare

    model = _tiny_model()
    prep = prepare(model, parse_strategy("bf16+checkpointing+fused"), precision="fp32", device="cpu")
    assert getattr(model, "is_activation_checkpointing", None) or model.is_gradient_checkpointing
    assert prep.precision == "bf16"
    with prep.autocast():
        assert torch.get_autocast_dtype("cpu") == torch.bfloat16
        assert torch.is_autocast_enabled("cpu")
    assert prep.optimizer.defaults.get("fused") is True
    assert prep.scaler is None  # GradScaler only for fp16 on CUDA
    base = prepare(_tiny_model(), parse_strategy("baseline"), precision="fp32", device="cpu")
    with base.autocast():
        assert not torch.is_autocast_enabled("cpu")


def test_checkpointing_plain_module():
    torch = pytest.importorskip("torch")
    from mlcost.measure.strategies import enable_checkpointing

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([torch.nn.Linear(8, 8) for _ in range(3)])

        def forward(self, x):
            for b in self.blocks:
                x = b(x)
            return x

    net = Net()
    note = enable_checkpointing(net)
    assert "3 blocks" in note
    assert enable_checkpointing(net) == note  # idempotent
    net(torch.randn(2, 8, requires_grad=True)).sum().backward()
    assert net.blocks[0].inner.weight.grad is not None


def test_ddp_needs_torchrun():
    pytest.importorskip("torch")
    from mlcost.measure.strategies import prepare

    with pytest.raises(SpecError, match="torchrun"):
        prepare(_tiny_model(), parse_strategy("ddp"), precision="fp32", device="cpu")
