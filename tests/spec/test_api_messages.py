"""Python API callers get messages naming the class and the keyword argument they passed
(``TrainJob(micro_batch=...)``), from the same rules the CLI applies to its flags (spec/validate.py)."""

from __future__ import annotations

import math
import re

import pytest

from mlcost.errors import SpecError
from mlcost.finance.tco import ServeSetup, TrainSetup
from mlcost.spec import Cluster, ModelSpec, ServeJob, TrainJob
from mlcost.spec import validate as rules

MODEL = dict(name="tiny", n_layers=2, d_model=64, n_heads=2, d_ff=256, vocab_size=100, max_seq_len=64)

CASES = [
    (lambda: TrainJob(tokens=1e9, micro_batch=0), "TrainJob(micro_batch=...)", rules.positive_int, 0),
    (lambda: TrainJob(tokens=1e9, seq_len=-3), "TrainJob(seq_len=...)", rules.positive_int, -3),
    (lambda: TrainJob(tokens=math.nan), "TrainJob(tokens=...)", rules.positive_float, math.nan),
    (lambda: TrainJob(tokens=1e9, goodput=1.5), "TrainJob(goodput=...)", rules.fraction, 1.5),
    (lambda: ServeJob(batch=0), "ServeJob(batch=...)", rules.positive_int, 0),
    (lambda: Cluster(device="h100-sxm", count=0), "Cluster(count=...)", rules.positive_int, 0),
    (lambda: Cluster(device="h100-sxm", pue=0.5), "Cluster(pue=...)", rules.pue, 0.5),
    (
        lambda: Cluster(device="h100-sxm", price_usd_per_device_h=-1.0),
        "Cluster(price_usd_per_device_h=...)",
        rules.nonneg_float,
        -1.0,
    ),
    (
        lambda: ModelSpec(**{**MODEL, "d_model": 0}),
        "ModelSpec(d_model=...) of model 'tiny'",
        rules.positive_int,
        0,
    ),
    (
        lambda: ServeSetup(cluster=Cluster(device="h100-sxm"), max_batch=0),
        "ServeSetup(max_batch=...)",
        rules.positive_int,
        0,
    ),
]


@pytest.mark.parametrize(("build", "what", "rule", "value"), CASES)
def test_message_names_the_parameter_and_matches_the_shared_rule(build, what, rule, value) -> None:
    with pytest.raises(SpecError) as got:
        build()
    message = str(got.value).splitlines()[0]
    assert message.startswith(what), message
    # The same rule, applied to the same value under the same name, says the same thing: one rule set.
    with pytest.raises(SpecError) as expected:
        rule(value, what)
    assert got.value.args[0] == expected.value.args[0]
    assert not re.search(r"\b(train job|serve job|cluster|setup)\.", message)


def test_api_values_must_already_have_their_type() -> None:
    """The CLI parses strings; a Python caller passing "4" gets a clear error, not a string in the spec."""
    with pytest.raises(SpecError, match=r"ServeJob\(batch=\.\.\.\) must be a whole number >= 1, got '4'"):
        ServeJob(batch="4")  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=r"TrainJob\(micro_batch=\.\.\.\)"):
        TrainJob(tokens=1e9, micro_batch=2.0)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match=r"TrainJob\(tokens=\.\.\.\)"):
        TrainJob(tokens="1e9")  # type: ignore[arg-type]


def test_choices_are_exact_with_the_canonical_spelling_suggested() -> None:
    with pytest.raises(SpecError) as err:
        TrainJob(tokens=1e9, precision="FP32")  # type: ignore[arg-type]
    assert "TrainJob(precision=...) must be one of fp32" in str(err.value)
    assert err.value.hint == "did you mean 'fp32'?"
    with pytest.raises(SpecError, match=r"TrainSetup\(precision=\.\.\.\)"):
        TrainSetup(cluster=Cluster(device="h100-sxm"), precision="bf17")  # type: ignore[arg-type]


def test_valid_values_still_pass() -> None:
    job = TrainJob(tokens=1e18, micro_batch=4, global_batch=8, zero=3, goodput=1.0)
    assert job.zero == 3
    assert Cluster(device="h100-sxm", pue=1.2, price_usd_per_device_h=0.0).pue == 1.2
