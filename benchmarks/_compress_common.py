"""Shared printing for the compress benchmarks: one line per method against fp32, measured in one run."""

from __future__ import annotations

from typing import Any


def summary(report: dict[str, Any], *, speed_goal: float = 1.5, drop_goal_pt: float = 1.0) -> str:
    """Per method: throughput speed-up, size cut and primary-quality delta with intervals; then whether a
    variant reaches ``speed_goal``× throughput within ``drop_goal_pt`` points (or relative %) of the original."""
    primary = report["task"]["primary_metric"]
    lines = [
        f"{'method':28s} {'speed-up vs fp32 [95% CI]':28s} {'size':>8s} {primary + ' delta [95% CI]':44s} verdict"
    ]
    hits = []
    for r in report["variants"]:
        if r["status"] != "ok":
            lines.append(f"{r['name']:28s} {r['status']}: {r['reason']}")
            continue
        sp, q = r["speedup"], r["quality"][primary]
        if q["scale"] == "fraction":
            d = f"{q['delta'] * 100:+.2f} pt [{q['delta_low'] * 100:+.2f}, {q['delta_high'] * 100:+.2f}]"
            drop = -q["delta"] * 100 if q["higher_is_better"] else q["delta"] * 100
        else:
            base = q["value"] - q["delta"]
            d = f"{q['delta']:+.3g} [{q['delta_low']:+.3g}, {q['delta_high']:+.3g}] ({q['delta'] / base:+.1%})"
            drop = (q["delta"] / base * 100) * (-1 if q["higher_is_better"] else 1)
        size = f"{1 / r['size_ratio']:.2f}x" if r["size_ratio"] > 0 else "-"
        tag = (
            "recommended"
            if r["verdict"]["recommended"]
            else ("baseline" if r["method"] == "original" else "no")
        )
        lines.append(
            f"{r['name']:28s} {sp['value']:.2f}x [{sp['low']:.2f}, {sp['high']:.2f}]{'':8s} {size:>8s} {d:44s} {tag}"
        )
        if (
            r["method"] != "original"
            and sp["value"] >= speed_goal
            and sp["low"] > 1.05
            and drop <= drop_goal_pt + 1e-9
        ):
            hits.append(r["name"])
    lines.append("")
    lines.append("verdicts:")
    lines.extend(f"  {r['verdict']['text']}" for r in report["variants"])
    goal = (
        f">= {speed_goal}x throughput (interval above 1.05x) within {drop_goal_pt} point(s) of fp32 {primary}"
    )
    if hits:
        lines.append(f"TARGET MET ({goal}): {', '.join(hits)}")
    else:
        lines.append(f"TARGET NOT MET ({goal}) on {report['hardware']['model']}: see the verdicts for why")
    lines.append(f"choice: {report['choice']['message']}")
    return "\n".join(lines)
