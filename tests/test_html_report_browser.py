"""report.html in a real headless Chromium: the chart draws, the question browser filters, pages and
expands, and no request leaves the page (from disk and from a plain static file server).

Needs Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs it) and the
``playwright`` package (dev extra), which drives the installed browser: no browser download.
Without them the tests skip with the reason, except under CI, where they fail (tests/requirements.py).
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from typing import Iterator, List

import pytest

from llama_index_bge_finetune.report.html_report import write_html_report
from tests.report_data import synthetic_comparison, write_run_files
from tests.requirements import CHROMIUM, DEV, require_module, require_program

pytestmark = pytest.mark.xdist_group("browser")  # under -n 2: one Chromium for the module

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    path = require_program("chromium", "chromium-browser", hint=CHROMIUM, env_var="CHROMIUM")
    require_module("playwright.sync_api", DEV)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:  # launch() gives the browser a fresh temporary profile of its own
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("run")
    cmp = synthetic_comparison(300, 3)
    cmp.held_out = synthetic_comparison(300, 3, n_passages=40, seed=2)
    write_run_files(run, cmp, n_chunks=190)
    return write_html_report(cmp, run / "report.html")  # what ModelComparison.save writes (tested there)


class Page:
    """A page with every request and error recorded; anything but file:, data: (and ``allow``) is blocked."""

    def __init__(self, browser: object, url: str, allow: str = "") -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
        self.requests: List[str] = []
        self.errors: List[str] = []
        ok = ("file:", "data:") + ((allow,) if allow else ())

        def route(r: object) -> None:
            self.requests.append(r.request.url)
            if r.request.url.startswith(ok):
                r.continue_()
            else:
                r.abort()

        self.context.route("**/*", route)
        self.page = self.context.new_page()
        self.page.on("request", lambda req: self.requests.append(req.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.goto(url)
        self.page.wait_for_selector("body[data-ready='1']", state="attached", timeout=15_000)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser: object, report: Path) -> Iterator[Page]:
    p = Page(browser, report.as_uri())
    yield p
    p.close()


def test_chart_renders_with_marks_switches_metric_and_shows_values_on_hover(page: Page) -> None:
    pg = page.page
    bars = pg.locator("#metric-chart svg .bars_marks path")
    assert bars.count() == 3 * 4, "one bar per model and k"
    assert pg.locator("#metric-chart svg .mark-rule line, #metric-chart svg .mark-rule path").count() > 0, "CI whiskers"
    shape = ("Array.from(document.querySelectorAll('#metric-chart svg .bars_marks path'))"
             ".map(p => p.getAttribute('d') + p.getAttribute('transform')).join('|')")
    before = pg.evaluate(shape)
    pg.select_option("#metric-select", "precision")
    pg.wait_for_function(f"({shape}) !== {before!r}", timeout=5_000)
    bars.nth(11).hover()
    tip = pg.locator("#vg-tooltip-element")
    tip.wait_for(state="visible", timeout=5_000)
    assert "precision" in tip.inner_text() and "[" in tip.inner_text(), "value with its interval"
    for chart in ("#chart-per-passage", "#chart-length", "#chart-loss", "#chart-eval"):  # drawn when scrolled to
        pg.locator(chart).scroll_into_view_if_needed()
        pg.wait_for_selector(f"{chart}[data-drawn='1'] svg .role-mark path", state="attached", timeout=10_000)
    assert "whole corpus" in pg.inner_text("#verdict") and "held-out" in pg.inner_text("#verdict")
    assert pg.evaluate("window.__report.errors") == [] and page.errors == []


def test_question_browser_searches_sorts_filters_pages_and_expands(page: Page) -> None:
    pg = page.page
    rows = pg.locator("#q-table tbody tr.row")
    assert rows.count() == 50 and "300 questions" in pg.inner_text("#q-status")
    assert "Showing 1–50 of 300" in pg.inner_text("#q-page")
    pg.click("#q-next")
    assert "Showing 51–100 of 300" in pg.inner_text("#q-page")

    pg.fill("#q-search", "in case 123?")
    pg.wait_for_function("document.querySelectorAll('#q-table tbody tr.row').length === 1")
    assert "case 123?" in rows.first.inner_text()
    rows.first.click()
    detail = pg.locator("#q-table tbody tr.detail")
    assert detail.count() == 1 and "Expected passage" in detail.inner_text()
    assert detail.locator("ol.retrieved").count() == 3, "each model's top passages"
    assert detail.locator("ol.retrieved li").count() >= 3

    pg.fill("#q-search", "")
    pg.select_option("#q-filter", "loss")
    pg.wait_for_function("document.querySelectorAll('#q-table tbody tr.row.loss').length > 0")
    assert rows.count() == pg.locator("#q-table tbody tr.row.loss").count(), "only losses shown"
    pg.select_option("#q-filter", "all")
    pg.select_option("#q-sort", "gain")
    changes = [float(t.replace("+", "")) for t in pg.locator("#q-table tbody tr.row td:last-child").all_inner_texts()]
    assert changes == sorted(changes, reverse=True) and changes[0] > 0
    assert page.errors == []


def test_no_request_leaves_the_page_from_disk(page: Page) -> None:
    page.page.click("#q-table tbody tr.row >> nth=0")  # interaction fetches nothing either
    assert page.requests and all(u.startswith(("file:", "data:")) for u in page.requests), page.requests


def test_opens_from_a_plain_static_file_server(browser: object, report: Path) -> None:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(report.parent))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{server.server_port}/"
    try:
        p = Page(browser, origin + report.name, allow=origin)
        try:
            assert p.page.locator("#metric-chart svg .bars_marks path").count() == 12
            assert p.requests == [origin + report.name] * len(p.requests), "the page itself, nothing else"
            assert p.errors == []
        finally:
            p.close()
    finally:
        server.shutdown()
        server.server_close()
