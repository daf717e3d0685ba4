"""How fast report.html is written and opened, for 10,000 questions and 3 models.

Goals: rendering takes at most 2 s and the file opens in Chromium in at most 2 s
(medians of repeats). There is no peer HTML report; beside it this measures the existing Markdown
report (report.md + chart.png) on the same comparison.

The comparison is synthetic (tests/report_data.py: random rankings over clipped passages), with
the run's files beside it (dataset.json, run.json, failures.jsonl, training_result.json with a
trainer log), so the data and training sections are rendered too. "Open" is from navigation to
the page saying it is ready: charts drawn and the first page of questions rendered.

    python benchmarks/bench_html_report.py --repeats 5

Ends with a one-line summary: render and open medians against the 2 s goals, file size; writes its record
to benchmarks/results/ (records.py). Run it alone: other load on the machine distorts timings.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llama_index_bge_finetune.report.html_report import write_html_report  # noqa: E402
from llama_index_bge_finetune.report.markdown import render_markdown  # noqa: E402
from tests.report_data import synthetic_comparison, write_run_files  # noqa: E402
from tests.test_html_report_browser import CHROMIUM_FLAGS  # noqa: E402

from records import open_record  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=10_000)
    ap.add_argument("--models", type=int, default=3)
    ap.add_argument("--passages", type=int, default=5_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = ap.parse_args()
    record = open_record("html_report")

    t0 = time.perf_counter()
    cmp = synthetic_comparison(args.questions, args.models, n_passages=args.passages, n_bootstrap=100,
                               n_permutations=100)
    cmp.held_out = synthetic_comparison(args.questions, args.models, n_passages=args.passages // 5, seed=1,
                                        n_bootstrap=100, n_permutations=100)
    print(f"built a {args.questions}-question, {args.models}-model comparison in {time.perf_counter() - t0:.1f} s "
          "(not timed below)", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench_html_"))
    write_run_files(work, cmp, n_chunks=args.passages + 100)

    render = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        path = write_html_report(cmp, work / "report.html")
        render.append(time.perf_counter() - t)
    markdown = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        (work / "report.md").write_text(render_markdown(cmp, chart="chart.png"), encoding="utf-8")
        cmp.plot(work / "chart.png")
        markdown.append(time.perf_counter() - t)
    size_mb = path.stat().st_size / 1e6

    from playwright.sync_api import sync_playwright

    opened, in_page = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_FLAGS)
        for _ in range(args.repeats):
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            t = time.perf_counter()
            page.goto(path.as_uri())
            page.wait_for_selector("body[data-ready='1']", state="attached", timeout=60_000)
            opened.append(time.perf_counter() - t)
            in_page.append(page.evaluate("performance.now()") / 1000)
            rows = page.locator("#q-table tbody tr.row").count()
            assert rows == 50 and page.evaluate("window.__report.errors") == [], "the page did not render"
            context.close()
        browser.close()
    shutil.rmtree(work, ignore_errors=True)

    figures = {
        "questions": args.questions, "models": args.models, "passages": args.passages, "repeats": args.repeats,
        "render_s": render, "open_s": opened, "open_in_page_s": in_page, "markdown_and_png_s": markdown,
        "size_mb": size_mb,
    }
    print("DETAILS: " + json.dumps(figures), flush=True)
    r, o, m = statistics.median(render), statistics.median(opened), statistics.median(markdown)
    figures["medians_s"] = {"render": r, "open": o, "markdown_and_png": m, "render_over_markdown": r / m}
    line = (f"SUMMARY: report.html for {args.questions} questions x {args.models} models: render {r:.2f} s "
            f"(goal <= 2 s), open in Chromium {o:.2f} s (goal <= 2 s), {size_mb:.1f} MB; report.md + chart.png "
            f"{m:.2f} s ({r / m:.1f}x); medians of {args.repeats}")
    record.write(figures, summary=line)
    print(line)
    print(f"record: {record.relative_path}")


if __name__ == "__main__":
    main()
