"""Acceptance: a report from a fixture ledger and a plan opens in headless Chromium (the Debian package,
driven by Playwright) with every non-file request aborted, and every plot draws with axis titles."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlcost.cli.main import main

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_report_draws_every_plot_offline(tmp_path: Path, plan_json: Path, ledger_url: str) -> None:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("Chromium is not installed (scripts/install-dev installs it with apt-get as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright python package is absent")

    out = tmp_path / "report.html"
    assert main(["report", str(plan_json), "--ledger", ledger_url, "-o", str(out)]) == 0
    errors: list[str] = []
    blocked: list[str] = []

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": 900})

        def route(r: object) -> None:
            url = r.request.url  # type: ignore[attr-defined]
            if url.startswith(("file:", "data:", "blob:")):
                r.continue_()  # type: ignore[attr-defined]
            else:
                blocked.append(url)
                r.abort()  # type: ignore[attr-defined]

        page.route("**/*", route)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(out.as_uri())
        page.wait_for_function("window.mlcostDrawn !== undefined", timeout=30_000)
        drawn = page.evaluate("window.mlcostDrawn")
        plots = page.locator("div.plot").count()
        svgs = page.evaluate("document.querySelectorAll('div.plot svg.main-svg').length")
        empty_titles = page.evaluate(
            """Array.from(document.querySelectorAll('div.plot')).map(d => {
                 const xs = Array.from(d.querySelectorAll('.g-xtitle text, .g-x2title text, .g-x3title text'));
                 const ys = Array.from(d.querySelectorAll('.g-ytitle text, .g-y2title text, .g-y3title text'));
                 return (xs.some(t => t.textContent.trim()) && ys.some(t => t.textContent.trim())) ? null : d.id;
               }).filter(x => x)"""
        )
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        for i in range(plots):  # one image per plot, to look at
            page.locator(f"#fig{i}").screenshot(path=str(tmp_path / f"plot{i}.png"))
        browser.close()

    assert not errors, errors
    assert not blocked, blocked
    assert plots >= 7  # Pareto, step breakdown, memory, totals, predicted vs measured x2, strategies
    assert drawn == plots
    assert svgs >= plots
    assert empty_titles == []
    assert (tmp_path / "report.png").stat().st_size > 10_000
    print(f"screenshot: {tmp_path / 'report.png'}")
