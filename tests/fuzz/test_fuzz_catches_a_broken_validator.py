"""The fuzz suite is not vacuous: with one validator broken (``positive_int`` accepting any whole number),
the same property finds a failure (a traceback, an internal field name in the message, or a negative
figure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mlcost.spec import validate
from tests.fuzz import test_cli_fuzz as fuzz


def _accept_any_int(value: Any, what: str, **_: Any) -> int:
    return int(float(value))


@pytest.mark.parametrize("name", ["test_estimate_train", "test_estimate_serve"])
def test_broken_positive_int_is_caught(name: str, ledger: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inner = getattr(fuzz, name).hypothesis.inner_test
    probe = settings(
        max_examples=400,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # stop at the first failure; no shrinking
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )(given(data=st.data())(inner))
    monkeypatch.setattr(validate, "positive_int", _accept_any_int)
    with pytest.raises(BaseException) as caught:
        probe(ledger=ledger)
    assert not isinstance(caught.value, KeyboardInterrupt)
    print(f"{name}: {type(caught.value).__name__}: {str(caught.value).splitlines()[0][:300]}")


ledger = fuzz.ledger
