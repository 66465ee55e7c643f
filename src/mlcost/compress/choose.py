"""Quality targets, verdicts, the cheapest variant that meets the target, and the Pareto front.

``--max-quality-drop`` syntax (one or more comma-separated terms):

* ``1%`` — relative: the metric may get worse by at most 1 % of the original's value;
* ``1pt`` — absolute percentage points, for metrics that are fractions (accuracy, F1, agreement);
* ``0.02`` — absolute, in the metric's own unit (e.g. cosine, perplexity);
* ``NAME=…`` — for metric NAME; a term without a name applies to the task's primary metric.

"Worse" follows each metric's direction (accuracy down, perplexity up). A variant meets the target on its
point estimate; when the interval of its delta reaches beyond the target the verdict says so.

A variant is **recommended** only when the lower end of its speed-up interval (throughput at the largest batch
size, vs the original, same interleaved rounds) is above :data:`MIN_SPEEDUP` (1.05×) and it meets every
target: mlcost never recommends a speed-up its interval does not support.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mlcost.compress.errors import CompressError

FLAG = "--max-quality-drop"
#: The lower end of a speed-up interval must clear this to count as faster: a few percent can come from the
#: order of calls or the allocator even in interleaved rounds, and would not pay for a change of model.
MIN_SPEEDUP = 1.05


@dataclass(frozen=True)
class Target:
    """Allowed worsening of one metric: ``amount`` in ``mode`` (``relative`` fraction, ``points``, ``absolute``)."""

    metric: str
    amount: float
    mode: str
    text: str

    def allowed(self, original: float, scale: str) -> float:
        """The allowed worsening in the metric's raw unit."""
        if self.mode == "relative":
            return abs(original) * self.amount
        if self.mode == "points":
            return self.amount / 100.0
        return self.amount

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "amount": self.amount, "mode": self.mode, "text": self.text}


_TERM = re.compile(
    r"^\s*(?:(?P<name>[A-Za-z_][\w]*)\s*=\s*)?(?P<num>[0-9]*\.?[0-9]+)\s*(?P<unit>%|pt|pts)?\s*$"
)


def parse_targets(text: str, *, primary: str, metrics: dict[str, str]) -> list[Target]:
    """Parse ``--max-quality-drop``; ``metrics`` maps metric names to their scale."""
    targets = []
    for term in text.split(","):
        m = _TERM.match(term)
        if not m:
            raise CompressError(
                f"{FLAG} {text!r}: cannot read {term.strip()!r}",
                hint="write e.g. 1% (relative), 1pt (percentage points), 0.02 (absolute) or accuracy=1pt",
            )
        name = m.group("name") or primary
        if name not in metrics:
            from mlcost.errors import UnknownNameError

            raise UnknownNameError("metric", name, metrics, extra_hint=f"in {FLAG}")
        unit = m.group("unit")
        mode = "relative" if unit == "%" else ("points" if unit in ("pt", "pts") else "absolute")
        if mode == "points" and metrics[name] != "fraction":
            raise CompressError(
                f"{FLAG} {term.strip()!r}: points apply to fraction metrics (accuracy, F1), not {name}",
                hint="use a relative (5%) or absolute (0.5) drop for it",
            )
        amount = float(m.group("num")) / (100.0 if mode == "relative" else 1.0)
        targets.append(Target(name, amount, mode, term.strip()))
    return targets


def worsening(delta: float, higher_is_better: bool) -> float:
    """How much worse a variant is (positive = worse) given its delta to the original."""
    return -delta if higher_is_better else delta


def pareto_front(points: list[tuple[str, float, float]]) -> list[str]:
    """Names of the points not dominated in (cost: lower is better, quality: higher is better)."""
    front = []
    for name, cost, quality in points:
        dominated = any(
            (c <= cost and q >= quality) and (c < cost or q > quality) for n, c, q in points if n != name
        )
        if not dominated:
            front.append(name)
    return front


@dataclass
class Verdict:
    recommended: bool
    meets_target: bool
    faster: bool
    text: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _fmt_delta(metric: dict[str, Any], name: str) -> str:
    if metric["scale"] == "fraction":
        f = 100.0
        return f"{metric['delta'] * f:+.1f} pt {name} [{metric['delta_low'] * f:+.1f}, {metric['delta_high'] * f:+.1f}]"
    return f"{metric['delta']:+.3g} {name} [{metric['delta_low']:+.3g}, {metric['delta_high']:+.3g}]"


def verdict(row: dict[str, Any], targets: list[Target], primary: str) -> Verdict:
    """An honest one-line verdict for one variant row (see :func:`mlcost.compress.pipeline` rows)."""
    name = row["name"]
    if row["status"] != "ok":
        return Verdict(False, False, False, f"{name}: {row['status']} ({row['reason']}); not recommended")
    if row["method"] == "original":
        return Verdict(False, True, False, f"{name}: the original (baseline of every ratio)")
    sp = row["speedup"]
    lo, hi, val = sp["low"], sp["high"], sp["value"]
    speed = f"{val:.2f}× throughput [{lo:.2f}, {hi:.2f}] at batch {row['batch_size']}"
    faster = lo > MIN_SPEEDUP
    if faster:
        speed_word = "faster"
    elif hi < 1.0:
        speed_word = "slower"
    elif lo > 1.0:
        speed_word = f"no meaningful speed-up (the interval starts below {MIN_SPEEDUP:.2f}×)"
    else:
        speed_word = "no measurable speed-up (the interval includes 1×)"
    size = row["size_ratio"]
    parts = [f"{speed} ({speed_word})", f"size {size:.2f}× of the original"]
    metrics = row["quality"]
    parts.append(_fmt_delta(metrics[primary], primary))
    failures = []
    caveats = []
    for t in targets:
        m = metrics[t.metric]
        allowed = t.allowed(m["value"] - m["delta"], m["scale"])
        worse = worsening(m["delta"], m["higher_is_better"])
        worst = max(
            worsening(m["delta_low"], m["higher_is_better"]),
            worsening(m["delta_high"], m["higher_is_better"]),
        )
        if worse > allowed + 1e-12:
            failures.append(f"{t.metric} drop beyond the target {t.text}")
        elif worst > allowed + 1e-12:
            caveats.append(
                f"{t.metric}'s interval reaches beyond {t.text}: more evaluation data would settle it"
            )
    meets = not failures
    why = [n for n in row.get("notes", [])]
    if not faster and row.get("isa_note"):
        why.append(row["isa_note"])
    recommended = faster and meets
    tail = "recommended" if recommended else "not recommended"
    reasons = [] if recommended else ([] if faster else [speed_word]) + failures
    text = f"{name}: " + ", ".join(parts)
    if reasons:
        text += f"; {tail}: " + "; ".join(reasons)
    else:
        text += f"; {tail}"
    extra = why + caveats
    if extra:
        text += f" ({'; '.join(extra)})"
    return Verdict(recommended, meets, faster, text)


def choose(rows: list[dict[str, Any]], verdicts: dict[str, Verdict], primary: str) -> dict[str, Any]:
    """The cheapest recommended variant, or the original with the closest candidate when none qualifies."""
    ok = [r for r in rows if r["status"] == "ok"]
    recommended = [r for r in ok if verdicts[r["name"]].recommended]
    original = next(r for r in ok if r["method"] == "original")
    if recommended:
        best = min(recommended, key=lambda r: r["cost"]["machine_h_per_million_requests"])
        return {
            "variant": best["name"],
            "met": True,
            "message": f"cheapest variant that meets the quality target: {best['name']}",
            "closest": None,
        }
    faster = [r for r in ok if verdicts[r["name"]].faster]
    closest = None
    if faster:
        m = primary
        closest = min(
            faster, key=lambda r: worsening(r["quality"][m]["delta"], r["quality"][m]["higher_is_better"])
        )
        msg = (
            "no variant meets the quality target while being measurably faster; closest: "
            f"{closest['name']} ({verdicts[closest['name']].text.split(': ', 1)[1].split(';')[0]}); "
            f"keep {original['name']}"
        )
    else:
        msg = f"no variant is measurably faster than the original on this machine; keep {original['name']}"
    return {
        "variant": original["name"],
        "met": False,
        "message": msg,
        "closest": None if closest is None else closest["name"],
    }
