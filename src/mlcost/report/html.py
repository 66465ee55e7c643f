"""The self-contained HTML report: sections of plots and tables built from what mlcost knows.

Why plotly: interactive figures (hover shows each plan's layout and price; zoom on the Pareto front) that a
manager can open from an e-mail attachment. The figures are plain plotly JSON written here (no
``plotly.graph_objects`` import, so a report builds in well under a second); plotly.js comes from the
installed ``plotly`` package and is inlined once, gzip-compressed and base64-encoded (4.8 MB → 2 MB), and
unpacked in the page with the browser's DecompressionStream. Nothing is fetched at view time.

Section registry: a section is a function ``(inputs: ReportInputs) -> Section | None`` registered with
:func:`register_section`; it returns None when its inputs are absent. ``compress`` and ``data`` results add
their sections the same way, reading their own key of ``inputs.extra``: ``mlcost report`` puts a JSON file
whose ``kind`` is a registered section key into ``inputs.extra[kind]``.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from mlcost.report import format as f
from mlcost.report.estimate import MEMORY_PARTS, TIME_PARTS
from mlcost.report.jsonout import _clean
from mlcost.report.view import View, to_html


@dataclass
class Figure:
    """One plotly figure: ``data`` (traces) and ``layout`` as plotly JSON, and a caption that says where the
    numbers come from."""

    data: list[dict[str, Any]]
    layout: dict[str, Any]
    caption: str


@dataclass
class Section:
    title: str
    figures: list[Figure] = field(default_factory=list)
    views: list[View] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class ReportInputs:
    """What a report is built from. Every field is optional; sections skip what is missing.

    - ``estimate``: ``mlcost estimate train --json`` (or serve);
    - ``plan``: ``mlcost plan train --json``; ``plan_estimate``: the estimate of its plan #1 (step-time and
      memory breakdown), computed by the caller;
    - ``runs``: ledger records (``RunRecord.to_dict()``), ``ledger``: where they came from (None: no ledger);
    - ``calibration``: ``mlcost calibrate --json`` or ``--report --json``;
    - ``extra``: results of other commands by name (e.g. ``"compress"``, ``"data"``) for their sections.
    """

    estimate: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    plan_estimate: dict[str, Any] | None = None
    runs: list[dict[str, Any]] | None = None
    ledger: str | None = None
    calibration: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    title: str = "mlcost report"


#: Section keys of mlcost's own results (read by ``mlcost report`` into ReportInputs fields, not ``extra``).
BUILTIN_SECTIONS = ("plan", "estimate", "runs", "strategies", "calibration")
SectionBuilder = Callable[[ReportInputs], "Section | None"]
_SECTIONS: list[tuple[float, str, SectionBuilder]] = []


def register_section(key: str, order: float) -> Callable[[SectionBuilder], SectionBuilder]:
    """Register a section builder under ``key``; sections appear by ``order`` (plan 10, estimate 20,
    runs 30, strategies 40, calibration 50; compress and data may take 60 and 70)."""

    def deco(fn: SectionBuilder) -> SectionBuilder:
        _SECTIONS[:] = [s for s in _SECTIONS if s[1] != key]
        _SECTIONS.append((order, key, fn))
        _SECTIONS.sort(key=lambda s: s[0])
        return fn

    return deco


def unregister_section(key: str) -> None:
    """Remove a section (tests use it)."""
    _SECTIONS[:] = [s for s in _SECTIONS if s[1] != key]


def sections() -> list[str]:
    """Registered section keys, in page order."""
    return [k for _, k, _ in _SECTIONS]


def _axis(title: str, **kw: Any) -> dict[str, Any]:
    return {"title": {"text": title}, "automargin": True, **kw}


def _layout(title: str, x: str, y: str, **kw: Any) -> dict[str, Any]:
    return {
        "title": {"text": title},
        "xaxis": _axis(x),
        "yaxis": _axis(y),
        "height": 380,
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "template": None,
        "legend": {"orientation": "h", "y": -0.25},
        **kw,
    }


# ----------------------------------------------------------------------------------------------- figures


def pareto_figure(plan: dict[str, Any]) -> Figure:
    """Time vs cost of the Pareto-optimal plans, the top plans, and plan #1 marked."""

    def label(p: dict[str, Any]) -> str:
        return (
            f"{p['count']} × {p['device']} TP{p['tp']} PP{p['pp']} DP{p['dp']} {p['precision']} "
            f"{p.get('provider') or ''} {p.get('pricing') or ''}: {f.duration(p['total_time_s'])}, "
            f"{f.money(p['cost_usd'])}"
        )

    pts = sorted(plan["pareto"], key=lambda p: p["total_time_s"])
    top = plan["plans"]
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "Pareto front",
            "x": [p["total_time_s"] / 86400 for p in pts],
            "y": [p["cost_usd"] for p in pts],
            "text": [label(p) for p in pts],
            "hoverinfo": "text",
            "line": {"shape": "hv"},
        },
        {
            "type": "scatter",
            "mode": "markers",
            "name": f"top {len(top)} by {plan['objective']}",
            "x": [p["total_time_s"] / 86400 for p in top],
            "y": [p["cost_usd"] for p in top],
            "text": [f"#{p['rank']} " + label(p) for p in top],
            "hoverinfo": "text",
            "marker": {"size": 9, "symbol": "circle-open"},
        },
    ]
    if top:
        data.append(
            {
                "type": "scatter",
                "mode": "markers+text",
                "name": "chosen plan (#1)",
                "x": [top[0]["total_time_s"] / 86400],
                "y": [top[0]["cost_usd"]],
                "text": ["#1"],
                "textposition": "top center",
                "marker": {"size": 16, "symbol": "star", "color": "#d62728"},
            }
        )
    layout = _layout("Time vs cost of training plans", "wall time (days, log)", "cost (USD, log)")
    layout["xaxis"]["type"] = "log"
    layout["yaxis"]["type"] = "log"
    return Figure(
        data,
        layout,
        f"From the plan JSON (mlcost plan train, {plan['candidates_evaluated']:,} candidates, prices of "
        f"{plan['price_snapshot_date']}): every plan on the time-cost Pareto front, the top plans by "
        f"{plan['objective']}, and plan #1 starred. Costs are point estimates; each has the band of its "
        "device's efficiency profile.",
    )


def breakdown_figure(est: dict[str, Any], source: str) -> Figure:
    parts = [(TIME_PARTS.get(k, k), v) for k, v in est["time_breakdown_s"].items()]
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": name,
            "y": ["step"],
            "x": [v],
            "hovertemplate": f"{name}: %{{x:.3f}} s<extra></extra>",
        }
        for name, v in parts
        if v > 0
    ]
    layout = _layout(
        f"Where a step's time goes ({f.duration(est['step_time_s'])} per step)",
        "time per step (s)",
        "",
        barmode="stack",
        height=300,
    )
    layout["yaxis"]["title"]["text"] = "optimizer step"
    layout["legend"] = {"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0, "traceorder": "normal"}
    layout["margin"]["t"] = 90
    return Figure(
        data,
        layout,
        f"From {source}: the estimator's time per optimizer step split into matmul, attention, memory-bound "
        "element-wise work, TP/PP/DP communication not hidden by overlap, pipeline bubble and the optimizer "
        "update (mlcost.estimate roofline per op class).",
    )


def memory_figure(est: dict[str, Any], source: str) -> Figure:
    mem = est["memory_per_device_bytes"]
    gib = 2.0**30
    data = [
        {"type": "bar", "name": part, "x": ["per device"], "y": [mem[part] / gib]}
        for part in MEMORY_PARTS
        if mem.get(part)
    ]
    cap = mem["capacity"] / gib
    layout = _layout(
        f"Memory per device by part (dashed: capacity {cap:.1f} GiB)", "", "memory (GiB)", barmode="stack"
    )
    layout["xaxis"]["title"]["text"] = "device"
    layout["shapes"] = [
        {
            "type": "line",
            "xref": "paper",
            "x0": 0,
            "x1": 1,
            "y0": cap,
            "y1": cap,
            "line": {"color": "#d62728", "dash": "dash", "width": 2},
        }
    ]
    return Figure(
        data,
        layout,
        f"From {source}: {', '.join(p for p in MEMORY_PARTS if mem.get(p))} (other: buffers, "
        f"fragmentation) per device after sharding, against the device's capacity "
        f"({'fits' if est.get('fits') else 'does not fit'}: {f.bytes_(mem['total'])} of {f.bytes_(mem['capacity'])}).",
    )


def totals_figure(est: dict[str, Any], source: str) -> Figure:
    band = est["error_band"]
    metrics = [("cost_usd", "cost (USD)"), ("energy_kwh", "energy (kWh)"), ("co2_kg", "CO2e (kg)")]
    data = []
    layout = _layout(
        f"Whole job: cost, energy and CO2e with the ±{band['relative']:.0%} band",
        "",
        "",
        height=320,
        showlegend=False,
    )
    n = 0
    for i, (key, label) in enumerate(metrics):
        if est.get(key) is None:
            continue
        n += 1
        lo, hi = band.get(key) or (est[key], est[key])
        ax = "" if i == 0 else str(i + 1)
        data.append(
            {
                "type": "bar",
                "name": label,
                "x": [label],
                "y": [est[key]],
                "xaxis": f"x{ax}",
                "yaxis": f"y{ax}",
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": [hi - est[key]],
                    "arrayminus": [est[key] - lo],
                },
            }
        )
        dom = [i / 3 + 0.04, (i + 1) / 3 - 0.04]
        layout[f"xaxis{ax}"] = {**_axis("estimate"), "domain": dom, "anchor": f"y{ax}"}
        layout[f"yaxis{ax}"] = {**_axis(label), "anchor": f"x{ax}"}
    return Figure(
        data,
        layout,
        f"From {source}: the whole job's cost, energy (device power × time × PUE) and CO2e (energy × grid "
        f"intensity) with the estimate's error band ({band['source'][:160]}…).",
    )


def _run_label(r: dict[str, Any]) -> str:
    return f"{r['run_id'][:8]} {r['model']} [{r['strategy'] or '-'}]"


def predicted_vs_measured_figure(
    runs: list[dict[str, Any]], key: str, unit: str, scale: float
) -> Figure | None:
    pts = [
        (r["predicted"][key] / scale, r["metrics"][key] / scale, _run_label(r))
        for r in runs
        if isinstance(r["predicted"].get(key), (int, float))
        and isinstance(r["metrics"].get(key), (int, float))
        and r["predicted"][key] > 0
        and r["metrics"][key] > 0
    ]
    if not pts:
        return None
    errs = [abs(m / p - 1) for p, m, _ in pts]
    mape = sum(errs) / len(errs)
    lo = min(min(p, m) for p, m, _ in pts) * 0.8
    hi = max(max(p, m) for p, m, _ in pts) * 1.25
    name = "step time" if key == "step_time_s" else "peak memory"
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": f"±{mape:.0%} (mean abs. error)",
            "x": [lo, hi, hi, lo],
            "y": [lo * (1 - mape), hi * (1 - mape), hi * (1 + mape), lo * (1 + mape)],
            "fill": "toself",
            "line": {"width": 0},
            "fillcolor": "rgba(31,119,180,0.15)",
            "hoverinfo": "skip",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "measured = predicted",
            "x": [lo, hi],
            "y": [lo, hi],
            "line": {"dash": "dot", "color": "#555"},
        },
        {
            "type": "scatter",
            "mode": "markers",
            "name": "ledger runs",
            "x": [p for p, _, _ in pts],
            "y": [m for _, m, _ in pts],
            "text": [t for _, _, t in pts],
            "marker": {"size": 8},
        },
    ]
    layout = _layout(
        f"Predicted vs measured {name} ({len(pts)} runs)", f"predicted ({unit})", f"measured ({unit})"
    )
    layout["xaxis"]["type"] = "log"
    layout["yaxis"]["type"] = "log"
    return Figure(
        data,
        layout,
        f"From the ledger: each completed run's measured {name} (metrics.{key}) against the estimator's "
        f"prediction stored with the run (predicted.{key}); the band is ± the mean absolute relative error "
        f"over these {len(pts)} runs ({mape:.1%}).",
    )


def strategy_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Speed-up and memory of each strategy against the 'baseline' run of the same model, device and
    shape (the most recent pair), from completed ledger runs."""

    def shape(r: dict[str, Any]) -> str:
        c = r.get("config") or {}
        keys = ("micro_batch", "seq_len", "global_batch", "layers", "d_model")
        return json.dumps([r["model"], r["device"], r["kind"], [c.get(k) for k in keys]])

    base: dict[str, dict[str, Any]] = {}
    for r in runs:
        if r["status"] == "completed" and (r["strategy"] or "baseline") == "baseline":
            base.setdefault(shape(r), r)
    out = []
    seen: set[tuple[str, str]] = set()
    for r in runs:
        b = base.get(shape(r))
        if b is None or r["status"] != "completed" or (r["strategy"] or "baseline") == "baseline":
            continue
        if (shape(r), r["strategy"]) in seen:
            continue
        seen.add((shape(r), r["strategy"]))
        t_b, t_r = b["metrics"].get("step_time_s"), r["metrics"].get("step_time_s")
        m_b, m_r = b["metrics"].get("peak_memory_bytes"), r["metrics"].get("peak_memory_bytes")
        if not (t_b and t_r):
            continue
        out.append(
            {
                "strategy": r["strategy"],
                "model": r["model"],
                "speedup": t_b / t_r,
                "memory_ratio": (m_r / m_b) if m_b and m_r else None,
                "run_id": r["run_id"],
                "baseline_id": b["run_id"],
            }
        )
    return out


def strategy_figure(rows: list[dict[str, Any]]) -> Figure:
    """Median speed-up and memory ratio per lever (and model) over its baseline pairs; whiskers span the
    smallest to the largest pair."""
    import statistics

    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(f"{r['strategy']} ({r['model']})", []).append(r)
    labels = sorted(groups, key=lambda k: -statistics.median(r["speedup"] for r in groups[k]))

    def trace(name: str, key: str) -> dict[str, Any]:
        med, lo, hi = [], [], []
        for k in labels:
            vals = [r[key] for r in groups[k] if r[key] is not None]
            m = statistics.median(vals) if vals else None
            med.append(m)
            lo.append(m - min(vals) if vals else 0)
            hi.append(max(vals) - m if vals else 0)
        return {
            "type": "bar",
            "name": name,
            "x": [f"{k}, n={len(groups[k])}" for k in labels],
            "y": med,
            "text": ["-" if m is None else f"{m:.2f}×" for m in med],
            "textposition": "outside",
            "error_y": {"type": "data", "symmetric": False, "array": hi, "arrayminus": lo},
        }

    data = [
        trace("speed-up (baseline step time / lever step time)", "speedup"),
        trace("peak memory vs baseline", "memory_ratio"),
    ]
    layout = _layout(
        "Strategy comparison: speed-up and memory per lever",
        "lever (model), pairs",
        "ratio to baseline (median)",
        barmode="group",
    )
    layout["shapes"] = [
        {
            "type": "line",
            "xref": "paper",
            "x0": 0,
            "x1": 1,
            "y0": 1,
            "y1": 1,
            "line": {"color": "#555", "dash": "dot"},
        }
    ]
    return Figure(
        data,
        layout,
        "From the ledger: each completed lever run against the baseline run of the same model, device and "
        "shape (mlcost measure train --compare); bars are medians over those pairs, whiskers the smallest "
        "and largest. A speed-up above 1 pays; quality is not part of a timing run.",
    )


# ---------------------------------------------------------------------------------------------- sections


@register_section("plan", 10)
def plan_section(inp: ReportInputs) -> Section | None:
    if inp.plan is None:
        return None
    from mlcost.report.plan import serve_view, train_view

    if inp.plan.get("kind") == "plan-serve":
        return Section("Serving plan", views=[serve_view(inp.plan)])
    if inp.plan.get("kind") == "plan-serve-slo":
        from mlcost.report.plan import serve_slo_view

        return Section("Serving plan (p90 SLOs, simulated)", views=[serve_slo_view(inp.plan)])

    s = Section("Training plan")
    if inp.plan["status"] == "ok" and inp.plan["pareto"]:
        s.figures.append(pareto_figure(inp.plan))
    s.views.append(train_view(inp.plan))
    if inp.plan_estimate is not None:
        src = "the estimate of plan #1 (mlcost estimate train on its layout)"
        s.figures += [
            breakdown_figure(inp.plan_estimate, src),
            memory_figure(inp.plan_estimate, src),
            totals_figure(inp.plan_estimate, src),
        ]
    return s


@register_section("estimate", 20)
def estimate_section(inp: ReportInputs) -> Section | None:
    est = inp.estimate
    if est is None:
        return None
    from mlcost.report.estimate import serve_view, train_view

    if est.get("kind") == "serve":
        src = "the estimate JSON (mlcost estimate serve)"
        return Section("Serving estimate", figures=[memory_figure(est, src)], views=[serve_view(est)])
    src = "the estimate JSON (mlcost estimate train)"
    return Section(
        "Training estimate",
        figures=[breakdown_figure(est, src), memory_figure(est, src), totals_figure(est, src)],
        views=[train_view(est)],
    )


@register_section("runs", 30)
def runs_section(inp: ReportInputs) -> Section | None:
    if inp.runs is None:
        return None
    from mlcost.report.runs import list_view

    s = Section("Measured runs")
    if not inp.runs:
        s.notes.append(f"The ledger ({inp.ledger}) has no runs matching the filters: nothing measured yet.")
        return s
    done = [r for r in inp.runs if r["status"] == "completed"]
    for key, unit, scale in (("step_time_s", "s", 1.0), ("peak_memory_bytes", "GiB", 2.0**30)):
        fig = predicted_vs_measured_figure(done, key, unit, scale)
        if fig is not None:
            s.figures.append(fig)
    if not s.figures:
        s.notes.append("No completed run carries a prediction to compare with.")
    s.views.append(list_view({"ledger": inp.ledger, "count": len(inp.runs), "runs": inp.runs}))
    return s


@register_section("strategies", 40)
def strategies_section(inp: ReportInputs) -> Section | None:
    if not inp.runs:
        return None
    rows = strategy_rows(inp.runs)
    if not rows:
        return None
    return Section("Strategies", figures=[strategy_figure(rows)])


@register_section("calibration", 50)
def calibration_section(inp: ReportInputs) -> Section | None:
    cal = inp.calibration
    if cal is None:
        return None
    from mlcost.report.view import Table

    v = View()
    if "step_time_mape" in cal:  # mlcost calibrate --report --json
        t = v.table(
            Table(
                f"Predicted vs measured step time ({cal.get('profile')})",
                ["run", "model", "measured", "predicted", "error"],
                right=("measured", "predicted", "error"),
            )
        )
        for r in cal["runs"]:
            t.add(
                r["run_id"][:8],
                r["model"],
                f.duration(r["measured_step_time_s"]),
                f.duration(r["predicted_step_time_s"]),
                f.pct(r["step_time_error_rel"], signed=True),
            )
        v.line(f"step-time MAPE over {len(cal['runs'])} runs: {f.pct(cal['step_time_mape'])}")
    else:  # mlcost calibrate --json
        t = v.table(Table("Calibrated efficiency profile", ["parameter", "value"], right=("value",)))
        for k, val in (cal.get("profile") or {}).items():
            if isinstance(val, (int, float)) and not isinstance(val, bool):
                t.add(k, f.number(val))
        fit = cal.get("fit") or {}
        if fit.get("time_mape") is not None:
            v.line(
                f"fit: step-time MAPE {f.pct(fit['time_mape'])}, memory mean |error| "
                f"{f.pct(fit.get('memory_mean_abs_rel'))}"
            )
    return Section("Calibration", views=[v])


# --------------------------------------------------------------------------------------------- the page


@lru_cache(maxsize=1)
def plotly_js_gzip_b64() -> str:
    """plotly.min.js from the installed plotly package, gzip-compressed and base64-encoded."""
    import importlib.util

    from mlcost.errors import MissingDependencyError

    if importlib.util.find_spec("plotly") is None:
        raise MissingDependencyError("plotly", "mlcost report", "report")
    raw = (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:1px solid #ddd;padding-bottom:.3rem;margin-top:2.2rem}
figure{margin:1rem 0}figcaption{font-size:.85rem;color:#555;margin-top:.2rem}
table.mlcost{border-collapse:collapse;font-size:.85rem;margin:.8rem 0}
table.mlcost caption{text-align:left;font-weight:600;padding:.3rem 0}
table.mlcost th,table.mlcost td{border-bottom:1px solid #eee;padding:.2rem .6rem}
td.r{text-align:right;font-variant-numeric:tabular-nums}.strong{font-weight:600}.note{color:#8a5a00}
#mlcost-error{color:#b00;font-weight:600}
details{margin:.5rem 0}summary{cursor:pointer;font-weight:600;font-size:.9rem}
"""

_BOOT = """
(async function(){
  try {
    const b64 = document.getElementById('plotly-gz').textContent;
    const bin = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    const stream = new Blob([bin]).stream().pipeThrough(new DecompressionStream('gzip'));
    const js = await new Response(stream).text();
    (0, eval)(js);
    const figs = JSON.parse(document.getElementById('mlcost-figures').textContent);
    for (const f of figs) {
      await Plotly.newPlot(f.id, f.data, f.layout, {displaylogo: false, responsive: true});
    }
    window.mlcostDrawn = figs.length;
  } catch (e) {
    document.getElementById('mlcost-error').textContent = 'plots could not be drawn: ' + e;
    window.mlcostDrawn = -1;
    throw e;
  }
})();
"""


def build_sections(inp: ReportInputs) -> list[Section]:
    out = []
    for _, _, fn in _SECTIONS:
        s = fn(inp)
        if s is not None:
            out.append(s)
    return out


def render_html(inp: ReportInputs, *, generated_at: str = "", version: str = "") -> str:
    """The whole report as one HTML document (plotly.js inlined; no network at view time)."""
    secs = build_sections(inp)
    figs: list[dict[str, Any]] = []
    body: list[str] = [f"<h1>{html.escape(inp.title)}</h1>"]
    meta = " · ".join(x for x in (f"mlcost {version}" if version else "", generated_at) if x)
    if meta:
        body.append(f"<p class='note'>{html.escape(meta)}</p>")
    body.append("<p id='mlcost-error'></p>")
    if not secs:
        body.append("<p>Nothing to report: give an estimate or plan JSON, or a ledger with runs.</p>")
    for s in secs:
        body.append(f"<section><h2>{html.escape(s.title)}</h2>")
        for note in s.notes:
            body.append(f"<p class='note'>{html.escape(note)}</p>")
        for fig in s.figures:
            fid = f"fig{len(figs)}"
            figs.append({"id": fid, "data": fig.data, "layout": fig.layout})
            body.append(
                f"<figure><div id='{fid}' class='plot'></div><figcaption>{html.escape(fig.caption)}"
                "</figcaption></figure>"
            )
        for v in s.views:
            body.append(to_html(v, explain=True))
        body.append("</section>")
    fig_json = json.dumps(_clean(figs), allow_nan=False, separators=(",", ":")).replace("</", "<\\/")
    scripts = ""
    if figs:
        scripts = (
            f"<script id='plotly-gz' type='application/octet-stream'>{plotly_js_gzip_b64()}</script>\n"
            f"<script id='mlcost-figures' type='application/json'>{fig_json}</script>\n"
            f"<script>{_BOOT}</script>"
        )
    else:
        body.append("<script>window.mlcostDrawn = 0;</script>")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(inp.title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + scripts
        + "</body></html>\n"
    )


def figure_count(inp: ReportInputs) -> int:
    return sum(len(s.figures) for s in build_sections(inp))
