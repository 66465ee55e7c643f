"""Print every published serving figure of tests/estimate/data/serving_published.csv next to mlcost's prediction
(the fitted engines.csv rows, through the public interface), as markdown tables: the golden rows with the
per-metric mean |error| and the worst case, the fit rows (the residuals of benchmarks/fit_engine_profiles.py),
and the excluded rows for the record. docs/serving_validation.md shows this output.

Usage: python benchmarks/serving_golden_table.py [--split golden|fit|excluded|all]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.estimate.serving_cases import Case, load_cases, predict
from tests.estimate.test_golden_serving import METRIC_FAMILY

from mlcost.catalog import get_catalog


def rows_for(split: str) -> list[tuple[Case, float | None]]:
    cat = get_catalog()
    out: list[tuple[Case, float | None]] = []
    for c in load_cases():
        if c.split != split:
            continue
        try:
            out.append((c, predict(c, cat.engine_profile(c.family, c.device))))
        except Exception as exc:  # an excluded row may be outside what the model accepts
            print(f"<!-- {c.case_id}: {exc} -->")
            out.append((c, None))
    return out


def render(split: str, rows: list[tuple[Case, float | None]]) -> None:
    print(f"\n### {split} ({len(rows)} figures)\n")
    print(
        "| case | engine | device | TP | batching | load | isl/osl | metric | published | predicted | error |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for c, p in rows:
        load = f"{c.load} {c.load_value:g}" if c.load != "offline" else "offline"
        err = "" if p is None else f"{p / c.published - 1:+.1%}"
        pred = "" if p is None else f"{p:.4g}"
        print(
            f"| {c.case_id} | {c.engine} {c.engine_version} | {c.device} | {c.tp} | {c.batching} | {load} | "
            f"{c.isl}/{c.osl} ({c.lengths}) | {c.metric} ({c.stat}) | {c.published:g} | {pred} | {err} |"
        )
    fam: dict[str, list[float]] = defaultdict(list)
    for c, p in rows:
        if p is not None:
            fam[METRIC_FAMILY[c.metric]].append(abs(p / c.published - 1))
    print()
    for k, v in sorted(fam.items()):
        print(f"- {k}: mean |error| {sum(v) / len(v):.1%}, max {max(v):.1%} over {len(v)} figures")
    scored = [(max(p / c.published, c.published / p), c) for c, p in rows if p is not None]
    if scored:
        f, c = max(scored, key=lambda t: t[0])
        print(f"- worst: {c.case_id} ({c.metric}), off by {f:.2f}x")
        cont = [t for t in scored if t[1].batching == "continuous"]
        if cont:
            f, c = max(cont, key=lambda t: t[0])
            print(f"- worst continuous-batching case: {c.case_id}, off by {f:.2f}x")
    for what in ("engine", "device", "tp", "batching"):
        counts = Counter(str(getattr(c, what)) for c, _ in rows)
        print(f"- by {what}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="golden", choices=("golden", "fit", "excluded", "all"))
    args = ap.parse_args()
    for split in ("golden", "fit", "excluded") if args.split == "all" else (args.split,):
        render(split, rows_for(split))


if __name__ == "__main__":
    main()
