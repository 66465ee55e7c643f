from __future__ import annotations

from mlcost.errors import UnknownNameError, close_matches, did_you_mean


def test_did_you_mean_is_one_phrase_or_nothing() -> None:
    assert did_you_mean("h100", ["h100-sxm", "a100-80gb"]) == "did you mean 'h100-sxm'?"
    assert did_you_mean("zzz", ["h100-sxm"]) == ""
    assert (
        did_you_mean("devce", ["device", "price"], end=" ", show=lambda c: f"[[{c}]]")
        == "did you mean [[device]]? "
    )
    assert close_matches("pric", ["price", "prices", "device"], n=2) == ["price", "prices"]


def test_unknown_name_suggests_and_lists() -> None:
    err = UnknownNameError("device", "h100", ["h100-sxm", "h100-pcie", "a100-80gb"])
    assert err.suggestions[0].startswith("h100")
    assert str(err).startswith("unknown device 'h100' (did you mean 'h100")
    assert "known: a100-80gb, h100-pcie, h100-sxm" in str(err)
