"""The one run lifecycle: signals end a run as interrupted with a consistent record; unstable step times
carry a warning; MFU is never above 100%."""

from __future__ import annotations

import os
import signal

import pytest

from mlcost.measure.ledger import Ledger
from mlcost.measure.meters import ReplayMeters
from mlcost.measure.options import TrainShape
from mlcost.measure.train import run_training
from tests.measure.test_runner_specs import TINY_GPT2


@pytest.fixture
def ledger(tmp_path):
    return Ledger(f"sqlite:///{tmp_path / 'runs.db'}")


def _signalling_module(signum: int, at_call: int):
    torch = pytest.importorskip("torch")

    class Lm(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(64, 16)
            self.out = torch.nn.Linear(16, 64)
            self.calls = 0

        def forward(self, input_ids):
            self.calls += 1
            if self.calls == at_call:
                os.kill(os.getpid(), signum)
            return self.out(self.emb(input_ids))

    return Lm()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_signal_marks_the_run_interrupted_with_partial_metrics(signum, ledger):
    # Call 1 is the FLOP-count pass; calls 2-4 are steps 1-3; the signal arrives during step 3.
    module = _signalling_module(signum, at_call=4)
    rec = run_training(module, TrainShape(micro_batch=2, seq_len=8), steps=20, warmup=1, ledger=ledger)
    stored = ledger.get(rec.run_id)
    assert stored.status == "interrupted"
    assert (
        "signal SIGTERM" in stored.error if signum == signal.SIGTERM else "KeyboardInterrupt" in stored.error
    )
    m = stored.metrics
    assert m["steps_done"] == 2 and m["steps_measured"] == 1 and m["step_time_s"] > 0
    assert m["energy_j"] is not None and stored.finished_at is not None
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_unstable_steps_carry_a_warning(ledger):
    times = [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.4, 0.5]
    meters = ReplayMeters.from_readings(step_times_s=times, energy_j=1.0, peak_bytes=1)
    rec = run_training(
        TINY_GPT2,
        TrainShape(micro_batch=1, seq_len=8),
        steps=10,
        warmup=0,
        dry_run=True,
        meters=meters,
        ledger=ledger,
    )
    m = ledger.get(rec.run_id).metrics
    assert m["stable"] is False and m["step_time_p90_over_p50"] > 1.5
    assert any("p90" in w for w in m["warnings"]) and any(
        "coefficient of variation" in w for w in m["warnings"]
    )
    steady = ReplayMeters.from_readings(step_times_s=[0.1] * 10, energy_j=1.0, peak_bytes=1)
    rec = run_training(
        TINY_GPT2, TrainShape(micro_batch=1, seq_len=8), steps=10, warmup=0, dry_run=True, meters=steady
    )
    assert (
        rec.metrics["stable"] is True and rec.metrics["warnings"] == [] and rec.metrics["step_time_cv"] < 1e-9
    )


def test_drift_is_flagged():
    from mlcost.measure.meters.stats import dispersion, stability_warnings

    disp = dispersion([0.2, 0.2, 0.2, 0.1, 0.1, 0.1])
    assert disp["step_time_drift"] == pytest.approx(-0.5)
    assert any("drift" in w for w in stability_warnings(disp))


def test_mfu_above_one_is_unavailable(monkeypatch):
    from mlcost.measure import facts

    monkeypatch.setattr(
        facts, "mfu_peak", lambda device, precision, facts=None: (1e9, "catalog test-row fp32 dense peak")
    )
    ok = facts.mfu_of(5e8, "cpu", "fp32")
    assert ok["mfu"] == pytest.approx(0.5) and "mfu_unavailable_reason" not in ok
    wrong = facts.mfu_of(2.1e9, "cpu", "fp32")
    assert wrong["mfu"] is None and wrong["mfu_peak_suspect"]
    assert (
        "exceeds the peak" in wrong["mfu_unavailable_reason"]
        and "mlcost calibrate" in wrong["mfu_unavailable_reason"]
    )


def test_unstable_run_warns_in_json_and_text(capsys):
    from mlcost.cli._output import emit
    from mlcost.measure.contract import run_summary
    from mlcost.report.runs import measured_view

    meters = ReplayMeters.from_readings(step_times_s=[0.1] * 8 + [0.4, 0.5], energy_j=1.0, peak_bytes=1)
    rec = run_training(
        TINY_GPT2, TrainShape(micro_batch=1, seq_len=8), steps=10, warmup=0, dry_run=True, meters=meters
    )
    summary = run_summary(rec)
    assert summary["stable"] is False and summary["warnings"] and summary["step_time_cv"] > 0.2
    emit({**rec.metrics, **summary}, measured_view)  # what `mlcost measure train` prints
    assert "warning: unstable step times" in capsys.readouterr().out
