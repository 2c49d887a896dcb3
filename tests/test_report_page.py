"""bench/report/page.py, plots.py and benchmark_plots.py: the page opens offline in a real headless
chromium, with no JavaScript errors and every plot drawn; a screenshot is kept in tests/artifacts/."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from benchmark_studies import GROUP, write_compare_group
from report_studies import ALPHA_TRIALS, write_finetune, write_study

from bench.report import ReportSettings, build_report
from bench.report.load import load_studies
from bench.report.plots import param_importances, study_plots
from bench.store.studies import StudySource

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--virtual-time-budget=20000", "--window-size=1280,9000"]


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    write_study(root, "alpha")
    write_study(root, "beta", ALPHA_TRIALS[::-1])
    write_finetune(root, "alpha", "best", trial_number=2)
    write_compare_group(root)  # one Benchmark section, no per-study sections
    return build_report(ReportSettings(results_dir=root)).out_dir / "index.html"


def test_page_is_self_contained_with_summary_first(page):
    text = page.read_text()
    assert "<script src" not in text  # plotly.js is embedded, nothing is fetched
    assert text.count("Plotly.newPlot") >= 14 + 3
    assert text.index("Best config by the search") < text.index("Top configs: validation")
    assert "Validation accuracy (mean over seeds) vs training FLOPs per run" in text
    assert "Confusion matrix on the test set: finetune run best (trial 2)" in text
    assert "Studies compared: best so far vs cumulative trial seconds" in text
    for plot in ("best so far vs trials finished", "best so far vs cumulative training seconds",
                 "regret vs compute"):
        assert f"<h3>Benchmark {GROUP}: {plot}</h3>" in text
    assert "Study compare-faq" not in text


def test_importances_are_skipped_with_a_reason_when_too_few_trials(tmp_path):
    write_study(tmp_path, "small", ALPHA_TRIALS[:1])
    (study,) = load_studies(StudySource(tmp_path))
    plot = param_importances(study)
    assert plot.figure is None and "at least 2 completed trials" in plot.skipped
    drawn = [p.title for p in study_plots(study) if p.figure is not None]
    assert "Optimization history" in drawn and "Learning curves" in drawn


class PlotDivs(HTMLParser):
    """The plot divs (id plot-N) of a DOM dump: which plotly marked drawn, which hold an svg.main-svg."""

    def __init__(self) -> None:
        super().__init__()
        self.open_divs: list[str | None] = []
        self.marked: dict[str, bool] = {}
        self.with_svg: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "div":
            plot_id = attrs.get("id") if re.fullmatch(r"plot-\d+", attrs.get("id") or "") else None
            if plot_id:
                self.marked[plot_id] = "js-plotly-plot" in classes
            self.open_divs.append(plot_id)
        elif tag == "svg" and "main-svg" in classes:
            self.with_svg.update(filter(None, self.open_divs))

    def handle_endtag(self, tag):
        if tag == "div" and self.open_divs:
            self.open_divs.pop()

    def undrawn(self) -> list[str]:
        return [p for p, marked in self.marked.items() if not marked or p not in self.with_svg]


def find_chromium() -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required in CI (apt-get install -y chromium)")
        pytest.skip("chromium is not installed")
    return browser


def test_page_draws_every_plot_without_errors_in_headless_chromium(page, tmp_path):
    browser = find_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "report.png"
    screenshot.unlink(missing_ok=True)
    done = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={screenshot}", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    errors = re.search(r'<pre id="js-errors" data-count="(-?\d+)">(.*?)</pre>', dom, re.S)
    assert errors, "the page's error recorder never ran"
    assert errors.group(1) == "0", f"JavaScript errors: {errors.group(2)}"
    parser = PlotDivs()
    parser.feed(dom)
    assert len(parser.marked) == page.read_text().count("Plotly.newPlot")
    assert not parser.undrawn(), f"plots not drawn: {parser.undrawn()}"
    assert f'data-drawn-plots="{len(parser.marked)}"' in dom
    assert screenshot.stat().st_size > 50_000
    print(f"screenshot: {screenshot}")
