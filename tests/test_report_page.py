"""bench/report/page.py, plots.py and benchmark_plots.py: the page opens offline in a real headless
chromium, with no JavaScript errors and every plot drawn, and at a laptop's width nothing is cut off
or wider than the window; screenshots are kept in tests/artifacts/."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import optuna
import pytest
from benchmark_studies import GROUP, write_compare_group
from report_studies import ALPHA_TRIALS, write_finetune, write_study
from test_evidence import synthetic_study

from bench.evidence.answers import KNOB_NAMES, capitalized
from bench.evidence.decisions import MARGIN
from bench.report import ReportSettings, build_report
from bench.report.load import load_studies
from bench.report.plots import param_importances, study_plots
from bench.store import layout
from bench.store.studies import StudySource

ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--virtual-time-budget=20000"]
LAPTOP = "1366,768"
RECORDER = (Path(__file__).parent / "page_recorder.js").read_text()


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    write_study(root, "alpha")
    write_study(root, "beta", ALPHA_TRIALS[::-1])
    write_finetune(root, "alpha", "best", trial_number=2)
    write_compare_group(root)  # one Benchmark section, no per-study sections
    return build_report(ReportSettings(results_dir=root)).out_dir / "index.html"


@pytest.fixture(scope="module")
def decided_page(tmp_path_factory) -> Path:
    """The page fixture's parts plus held-out seeds, so FAQ pairs are decided and drawn."""
    root = tmp_path_factory.mktemp("results")
    write_study(root, "alpha")
    write_finetune(root, "alpha", "best", trial_number=2)
    write_compare_group(root)
    # a study made outside the search counts as held out: kernel 7 better, stride 2 worse
    layout.study_dir(root, "heldout").mkdir(parents=True)
    heldout = optuna.create_study(study_name="heldout", storage=layout.sqlite_url(root, "heldout"))
    heldout.add_trials(synthetic_study(np.random.default_rng(0),
                                       {"stride": -0.008, "kernel_size": +0.006}, seeds=6).trials)
    return build_report(ReportSettings(results_dir=root)).out_dir / "index.html"


def test_page_is_self_contained_with_summary_first(page):
    text = page.read_text()
    assert "<script src" not in text  # plotly.js is embedded, nothing is fetched
    assert "reportErrors" not in text and "js-errors" not in text  # the recorder is the tests'
    assert text.count("Plotly.newPlot") >= 14 + 3
    assert text.index("Best config by the search") < text.index("Top configs: validation")
    assert "Validation accuracy (mean over seeds) vs FLOPs per image" in text
    assert "Confusion matrix on the test set: finetune run best (trial 2)" in text
    assert "Studies compared: best so far vs cumulative trial seconds" in text
    for plot in ("regret so far vs trials finished", "regret so far vs cumulative training seconds",
                 "regret vs compute"):
        assert f"<h3>Benchmark {GROUP} (1 epoch, 4 evaluations per epoch): {plot}</h3>" in text
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


def with_recorder(page: Path, copy: Path) -> Path:
    """A copy of the page with the recorder (page_recorder.js) run before plotly.js and the
    hidden element it writes the errors into, so the DOM dump shows what it measured."""
    text = page.read_text()
    end = text.rindex("</body>")
    head = f"<head>\n<script>{RECORDER}</script>\n<style>#js-errors {{ display: none; }}</style>"
    copy.write_text(text[:end].replace("<head>", head, 1)
                    + '<pre id="js-errors" data-count="-1"></pre>\n' + text[end:])
    return copy


def open_in_chromium(page: Path, profile: Path, window: str, screenshot: Path) -> str:
    """The DOM of the page, with the recorder added, after it loaded in headless chromium."""
    browser = find_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot.unlink(missing_ok=True)
    recorded = with_recorder(page, profile.parent / f"recorded-{page.name}")
    done = subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--window-size={window}", f"--user-data-dir={profile}",
         f"--screenshot={screenshot}", "--dump-dom", recorded.resolve().as_uri()],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def assert_drawn_without_errors(page: Path, dom: str) -> None:
    errors = re.search(r'<pre id="js-errors" data-count="(-?\d+)">(.*?)</pre>', dom, re.S)
    assert errors, "the recorder never ran"
    assert errors.group(1) == "0", f"JavaScript errors: {errors.group(2)}"
    parser = PlotDivs()
    parser.feed(dom)
    assert len(parser.marked) == page.read_text().count("Plotly.newPlot")
    assert not parser.undrawn(), f"plots not drawn: {parser.undrawn()}"
    assert f'data-drawn-plots="{len(parser.marked)}"' in dom
    placeholder = re.search(r'data-placeholder="([^"]*)"', dom)
    assert placeholder and placeholder.group(1) == "", f"placeholder text in {placeholder}"


def test_page_draws_every_plot_without_errors_in_headless_chromium(page, tmp_path):
    screenshot = ARTIFACTS / "report.png"
    dom = open_in_chromium(page, tmp_path / "profile", "1280,9000", screenshot)
    assert_drawn_without_errors(page, dom)
    assert screenshot.stat().st_size > 50_000
    print(f"screenshot: {screenshot}")


class Paragraphs(HTMLParser):
    """The <p> texts of a DOM dump, each with whether it is inside a <details> block, and the
    body's attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, str] = {}
        self.details = 0
        self.found: list[tuple[str, bool]] = []
        self.text: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self.body = dict(attrs)
        self.details += tag == "details"
        if tag == "p":
            self.text = []

    def handle_endtag(self, tag):
        self.details -= tag == "details"
        if tag == "p" and self.text is not None:
            self.found.append(("".join(self.text), self.details > 0))
            self.text = None

    def handle_data(self, data):
        if self.text is not None:
            self.text.append(data)


def test_page_fits_a_laptop_and_leads_with_the_decisions(decided_page, tmp_path):
    screenshot = ARTIFACTS / "report-laptop.png"
    dom = open_in_chromium(decided_page, tmp_path / "profile", LAPTOP, screenshot)
    assert_drawn_without_errors(decided_page, dom)
    parser = Paragraphs()
    parser.feed(dom)
    seen = parser.body  # what the recorder measured
    print(f"at {LAPTOP}: scrollWidth {seen['data-scroll-width']} (details open: "
          f"{seen['data-scroll-width-open']}), clientWidth {seen['data-client-width']}, "
          f"innerWidth {seen['data-inner-width']}; screenshot: {screenshot}")
    assert seen["data-inner-width"] == LAPTOP.split(",")[0]
    for state in ("", "-open"):  # every <details> closed, as a reader first sees it, then open
        assert int(seen[f"data-scroll-width{state}"]) <= int(seen["data-client-width"])
        assert seen[f"data-wide{state}"] == "", "tables or plots past the right edge"
        assert seen[f"data-cut{state}"] == "", "plots with text cut off at their edges"
        assert seen[f"data-placeholder{state}"] == "", "plots with placeholder text"

    text = decided_page.read_text()
    start = text.index('<div class="summary">')
    summary = text[start:text.index("</div>", start)]
    assert re.sub(r"<details>.*?</details>", "", summary).count("<p>") == 3
    shown = [line for line, folded in parser.found if not folded]
    assert shown[0].startswith("Best: kernel 7, stride 1, pool 2/2, FC 256: 99.")
    assert shown[1].startswith("The one to use: ") and shown[2].startswith(
        f"Decided within ±{MARGIN * 100:.2f}")
    for name in KNOB_NAMES.values():  # a verdict line per knob, outside the block folded under it
        line = next(line for line in shown if line.startswith(f"{capitalized(name)}: "))
        paragraph = f"<p>{html.escape(line)}</p>"
        assert f"{paragraph}<details><summary>In full</summary>" in text
    for planted in ("Conv kernel size: supported (", "Conv stride: supported ("):
        assert any(line.startswith(planted) for line in shown)
    folded = [line for line, folded in parser.found if folded]
    assert any(line.startswith("conv stride 1 -> 2 (kernel 5, pool 2/2, FC 256): ")
               for line in folded)
    assert text.count("<details>") == 1 + len(KNOB_NAMES) + 1  # summary, knobs, benchmark terms
    order = ['<div class="summary">', "<h3>FAQ: paired differences on held-out seeds",
             "<h3>Validation accuracy (mean over seeds) vs FLOPs per image</h3>",
             ">FAQ answers</h2>", "<h3>FAQ: paired comparisons", ">Tables</h2>"]
    assert [text.index(part) for part in order] == sorted(text.index(part) for part in order)
    # a table of contents, a link to every section, each to its own heading
    links = re.findall(r'<a href="#(section-\d+)">', text)
    assert '<nav class="toc">' in text and links
    assert links == re.findall(r'<h2 id="(section-\d+)">', text)
