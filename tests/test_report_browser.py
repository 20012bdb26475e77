"""The report in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

Opens ``index.html`` from disk (``file://``, as a user opens it offline), pages through the QC
gallery, checks that every image on every page loaded (``naturalWidth > 0``), that the console
shows no error and no request failed, that the filter finds one pair, and saves a screenshot
(a non-blank PNG). Skipped only when Playwright or the browser is missing; with
``RADFLOW_REQUIRE_BROWSER=1`` (``.ci/run``) a missing browser fails instead.

The slow test runs the workflow on the demo cohort up to ``report`` and checks the demo's page
the same way, with the planted-identifier scan over the results (the report folder included).
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from report_fixtures import make_report_inputs
from workflow_helpers import demo_config, find_planted, snakemake

from radflow.report.page import render_page, write_page
from radflow.report.qc import PairPicture
from radflow.report.settings import ReportSettings
from radflow.report.stage import run_report

REQUIRED = os.environ.get("RADFLOW_REQUIRE_BROWSER") == "1"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _browser_path() -> str:
    found = next((p for p in map(shutil.which, BROWSERS) if p), None)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        found = None
        why = "playwright is not installed (pip install -e '.[test]')"
    else:
        why = "no Chromium found (apt-get install chromium)"
    if found:
        return found
    if REQUIRED:
        pytest.fail(f"RADFLOW_REQUIRE_BROWSER=1 but {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser():
    path = _browser_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        chromium = pw.chromium.launch(executable_path=path, headless=True,
                                      args=["--no-sandbox"])
        yield chromium
        chromium.close()


def _visit(browser, page_file: Path, screenshot: Path) -> dict[str, object]:
    """Open the page, walk every gallery page; return what was seen."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    page.goto(page_file.as_uri())
    page.wait_for_load_state("load")
    seen: set[str] = set()
    broken: list[str] = []
    pages = 0
    while True:
        pages += 1
        for img in page.query_selector_all("img"):  # lazy images load when scrolled to
            if img.is_visible():
                img.scroll_into_view_if_needed()
        page.wait_for_function("Array.from(document.images).filter(i => i.offsetParent)"
                               ".every(i => i.complete)")
        state = page.evaluate("""() => Array.from(document.images)
            .filter(i => i.offsetParent !== null)
            .map(i => [i.getAttribute('src'), i.naturalWidth])""")
        broken += [src for src, width in state if width == 0]
        seen |= {src for src, _ in state}
        if page.is_disabled("#qc-next"):
            break
        page.click("#qc-next")
    label = page.text_content("#qc-page")
    page.click("#qc-prev") if pages > 1 else None
    page.screenshot(path=str(screenshot), full_page=False)
    first_pair = page.get_attribute("figure.card", "data-search").split()[0]
    page.fill("#qc-filter", first_pair)
    visible = page.evaluate("""() => Array.from(document.querySelectorAll('figure.card'))
        .filter(c => !c.hidden).length""")
    page.close()
    return {"errors": errors, "broken": broken, "seen": seen, "pages": pages, "label": label,
            "filtered": visible}


def _non_blank_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("L"), float)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels.std() > 10, "the screenshot is blank"


def test_the_report_works_in_a_browser(browser, tmp_path) -> None:
    cohort = make_report_inputs(tmp_path / "in", n_pairs=26)
    page_file = run_report(cohort.inputs, str(tmp_path / "report"),
                           ReportSettings(thumbnails_per_page=12), cohort="t",
                           config={"cohort": "t"}, version="0.0.test")
    seen = _visit(browser, page_file, tmp_path / "screenshot.png")
    assert seen["errors"] == []
    assert seen["broken"] == []
    assert seen["pages"] == 3 and "page 3 of 3 (26 of 26 pairs)" in str(seen["label"])
    thumbs = {s for s in seen["seen"] if s.startswith("assets/thumbs/")}
    ok = [p for p in cohort.pair_ids if p != cohort.failed_pair]
    assert thumbs == {f"assets/thumbs/{p}.png" for p in ok}  # every picture shown and loaded
    assert {"assets/distributions.png", "assets/correlation.png"} <= seen["seen"]
    assert seen["filtered"] == 1
    _non_blank_png(tmp_path / "screenshot.png")


def test_500_pairs_stay_navigable(browser, tmp_path) -> None:
    """500 cards (all sharing one small picture): 21 pages of 24, the last one partly filled;
    the filter and the picture menu narrow them down."""
    out = tmp_path / "report"
    (out / "qc").mkdir(parents=True)
    Image.new("RGB", (60, 20), "white").save(out / "qc" / "one.png")
    cards = [PairPicture(pair_id=f"p{i:016x}", case_id=f"c{i // 2:012x}", roi="lesion", label="1",
                         status="ok" if i % 10 else "failed:empty-mask", modality="CT",
                         picture="qc/one.png" if i % 10 else "",
                         thumbnail="qc/one.png" if i % 10 else "",
                         note="" if i % 10 else "no picture")
             for i in range(500)]
    html = render_page({"cohort": "big", "version": "0", "n_pairs": 500, "n_pictures": 450,
                        "cards": cards, "per_page": 24, "planes": "axial", "margin_mm": "20",
                        "status_tables": [], "analysis": None, "no_analysis": "none",
                        "feature_plots": [], "outcome_plots": [], "provenance_tables": [],
                        "config_text": ""})
    page_file = write_page(out, html)
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_file.as_uri())
    shown = "() => Array.from(document.querySelectorAll('figure.card')).filter(c => !c.hidden)"
    assert page.evaluate(f"({shown})().length") == 24
    assert page.text_content("#qc-page") == "page 1 of 21 (500 of 500 pairs)"
    for _ in range(20):
        page.click("#qc-next")
    assert page.text_content("#qc-page") == "page 21 of 21 (500 of 500 pairs)"
    assert page.evaluate(f"({shown})().length") == 500 - 20 * 24 and page.is_disabled("#qc-next")
    page.select_option("#qc-status", "none")
    assert page.text_content("#qc-page") == "page 1 of 3 (50 of 500 pairs)"
    page.select_option("#qc-status", "all")
    page.fill("#qc-filter", "c0000000000f9")  # one case, two pairs
    assert page.evaluate(f"({shown})().map(c => c.dataset.search.split(' ')[0])") == [
        f"p{498:016x}", f"p{499:016x}"]
    assert errors == []
    page.close()


@pytest.mark.slow
def test_the_demo_report(browser, tmp_path) -> None:
    from radflow.demo import make_demo_cohort

    demo = make_demo_cohort(tmp_path / "demo")
    config = demo_config(tmp_path, demo, analyse={"enabled": True}, report={"enabled": True})
    work = tmp_path / "work"
    run = snakemake(work, ["--cores", "2", *config])
    res = work / "results" / "demo"
    page_file = res / "report" / "index.html"
    assert page_file.is_file()
    assert "report: results/demo/report/index.html" in run.stdout + run.stderr
    pairs = (res / "pair" / "pairs.tsv").read_text().splitlines()[1:]
    ids = {line.split("\t")[0] for line in pairs}
    assert {p.stem for p in (res / "report" / "qc").glob("*.png")} == ids
    assert find_planted(work, demo.planted_phi, skip=[".radflow"]) == []
    seen = _visit(browser, page_file, tmp_path / "demo.png")
    assert seen["errors"] == [] and seen["broken"] == []
    assert {s for s in seen["seen"] if s.startswith("assets/thumbs/")} == {
        f"assets/thumbs/{p}.png" for p in ids}
    assert any(s.startswith("assets/km-") for s in seen["seen"])
    _non_blank_png(tmp_path / "demo.png")
