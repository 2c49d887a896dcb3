"""The self-contained HTML page: summary first, then the sections; plotly.js embedded once."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from itertools import count
from typing import TYPE_CHECKING

import pandas as pd
from plotly.offline import get_plotlyjs

from bench.report.formatting import readable

if TYPE_CHECKING:
    from bench.report.plots import Plot

# Records into the page itself, so a headless browser's DOM dump can show them: JavaScript errors,
# the plots drawn, and the layout a reader sees (the widths; ids of tables and plots reaching past
# the viewport's right edge; ids of plots with text cut off at their edges), with every
# collapsible block closed and then open.
RECORDER = """
window.reportErrors = [];
window.addEventListener("error", function (event) {
  window.reportErrors.push(String(event.message || event.type));
});
window.addEventListener("unhandledrejection", function (event) {
  window.reportErrors.push("unhandled rejection: " + String(event.reason));
});
function outside(inner, outer) {
  return inner.width > 0 && (inner.left < outer.left - 0.5 || inner.right > outer.right + 0.5
                             || inner.top < outer.top - 0.5 || inner.bottom > outer.bottom + 0.5);
}
function recordLayout(body, suffix) {
  var root = document.documentElement, viewport = {left: 0, top: -1e9, right: root.clientWidth,
                                                   bottom: 1e9, width: 1};
  var wide = new Set(), cut = new Set();
  document.querySelectorAll("table, .plotly-graph-div, .main-svg").forEach(function (element) {
    if (outside(element.getBoundingClientRect(), viewport)) wide.add(element.closest("[id]").id);
  });
  document.querySelectorAll(".plotly-graph-div").forEach(function (plot) {
    var box = plot.getBoundingClientRect();
    plot.querySelectorAll("text").forEach(function (text) {
      if (outside(text.getBoundingClientRect(), box)) cut.add(plot.id);
    });
  });
  body.dataset["scrollWidth" + suffix] = String(root.scrollWidth);
  body.dataset["wide" + suffix] = Array.from(wide).join(" ");
  body.dataset["cut" + suffix] = Array.from(cut).join(" ");
}
window.addEventListener("load", function () {
  setTimeout(function () {
    var out = document.getElementById("js-errors"), body = document.body;
    out.textContent = window.reportErrors.join("\\n");
    out.dataset.count = String(window.reportErrors.length);
    body.dataset.drawnPlots = String(document.querySelectorAll(".js-plotly-plot").length);
    body.dataset.clientWidth = String(document.documentElement.clientWidth);
    body.dataset.innerWidth = String(window.innerWidth);
    recordLayout(body, "");
    var folded = document.querySelectorAll("details");
    folded.forEach(function (block) { block.open = true; });
    recordLayout(body, "Open");
    folded.forEach(function (block) { block.open = false; });
  }, 500);
});
"""
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222;
       padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2rem;
       margin-top: 2.5rem; } h3 { margin-top: 1.6rem; }
.summary { background: #f3f7fb; border-left: 4px solid #1f77b4; padding: 0.6rem 1rem; }
.summary p { margin: 0.3rem 0; } .note { color: #777; font-style: italic; }
details { margin: 0 0 0.8rem 1rem; color: #444; } p + details { margin-top: -0.6rem; }
details p { margin: 0.3rem 0; } .summary details { margin-top: 0.3rem; }
summary { cursor: pointer; color: #1f77b4; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #fafafa; } td:first-child, th:first-child { text-align: left; }
.table-wrap { overflow-x: auto; }
#js-errors { display: none; }
"""


@dataclass
class Folded:
    """Lines in a collapsible block, opened by a label that says what they are."""

    label: str
    lines: list[str]


@dataclass
class Section:
    """A part of the page: a heading, lines (some folded), tables and plots, in that order."""

    title: str
    lines: list[str | Folded] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)


def render_page(title: str, summary: list[str | Folded], notes: list[str],
                sections: list[Section]) -> str:
    """The whole page as one HTML string that opens offline."""
    tables, plots = count(), count()
    body = [f"<h1>{html.escape(title)}</h1>"]
    if summary:
        body.append('<div class="summary">' + _paragraphs(summary) + "</div>")
    body += [f'<p class="note">{html.escape(note)}</p>' for note in notes]
    for section in sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        body.append(_paragraphs(section.lines))
        for caption, frame in section.tables:
            body.append(f"<h3>{html.escape(caption)}</h3>")
            shown = readable(frame).rename(columns=lambda name: name.replace("_", " "))
            body.append(f'<div class="table-wrap" id="table-{next(tables)}">'
                        + shown.to_html(index=False, border=0, escape=True) + "</div>")
        for plot in section.plots:
            body.append(f"<h3>{html.escape(plot.title)}</h3>")
            if plot.figure is None:
                body.append(f'<p class="note">Not drawn: {html.escape(plot.skipped)}.</p>')
                continue
            body.append(plot.figure.to_html(
                full_html=False, include_plotlyjs=False, div_id=f"plot-{next(plots)}",
                config={"displaylogo": False, "responsive": True}))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<script>{RECORDER}</script>
<script>{get_plotlyjs()}</script>
<style>{STYLE}</style>
</head>
<body>
{chr(10).join(body)}
<pre id="js-errors" data-count="-1"></pre>
</body>
</html>
"""


def _paragraphs(lines: list[str | Folded]) -> str:
    """A paragraph per line; a folded block as <details> with its label as the <summary>."""
    return "".join(
        f"<details><summary>{html.escape(line.label)}</summary>"
        + "".join(f"<p>{html.escape(text)}</p>" for text in line.lines) + "</details>"
        if isinstance(line, Folded) else f"<p>{html.escape(line)}</p>" for line in lines)
