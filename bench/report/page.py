"""The self-contained HTML page: summary first, then tables, then plots; plotly.js embedded once."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import pandas as pd
from plotly.offline import get_plotlyjs

from bench.report.formatting import readable
from bench.report.plots import Plot

# Records JavaScript errors into the page itself, so a headless browser's DOM dump can show them.
ERROR_RECORDER = """
window.reportErrors = [];
window.addEventListener("error", function (event) {
  window.reportErrors.push(String(event.message || event.type));
});
window.addEventListener("unhandledrejection", function (event) {
  window.reportErrors.push("unhandled rejection: " + String(event.reason));
});
window.addEventListener("load", function () {
  setTimeout(function () {
    var out = document.getElementById("js-errors");
    out.textContent = window.reportErrors.join("\\n");
    out.dataset.count = String(window.reportErrors.length);
    document.body.dataset.drawnPlots = String(document.querySelectorAll(".js-plotly-plot").length);
  }, 0);
});
"""
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222;
       padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2rem;
       margin-top: 2.5rem; } h3 { margin-top: 1.6rem; }
.summary { background: #f3f7fb; border-left: 4px solid #1f77b4; padding: 0.6rem 1rem; }
.summary p { margin: 0.3rem 0; } .note { color: #777; font-style: italic; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 0.25rem 0.6rem; text-align: right; }
th { background: #fafafa; } td:first-child, th:first-child { text-align: left; }
.table-wrap { overflow-x: auto; }
#js-errors { display: none; }
"""


@dataclass
class Section:
    """A part of the page: a heading, lines of text, tables and plots, in that order."""

    title: str
    lines: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    plots: list[Plot] = field(default_factory=list)


def render_page(title: str, summary: list[str], notes: list[str], sections: list[Section]) -> str:
    """The whole page as one HTML string that opens offline."""
    counter = iter(range(1_000_000))
    body = [f"<h1>{html.escape(title)}</h1>",
            '<div class="summary">' + "".join(f"<p>{html.escape(line)}</p>" for line in summary)
            + "</div>"]
    body += [f'<p class="note">{html.escape(note)}</p>' for note in notes]
    for section in sections:
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        body += [f"<p>{html.escape(line)}</p>" for line in section.lines]
        for caption, frame in section.tables:
            body.append(f"<h3>{html.escape(caption)}</h3>")
            body.append('<div class="table-wrap">'
                        + readable(frame).to_html(index=False, border=0, escape=True) + "</div>")
        for plot in section.plots:
            body.append(f"<h3>{html.escape(plot.title)}</h3>")
            if plot.figure is None:
                body.append(f'<p class="note">Not drawn: {html.escape(plot.skipped)}.</p>')
                continue
            body.append(plot.figure.to_html(
                full_html=False, include_plotlyjs=False, div_id=f"plot-{next(counter)}",
                config={"displaylogo": False, "responsive": True}))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<script>{ERROR_RECORDER}</script>
<script>{get_plotlyjs()}</script>
<style>{STYLE}</style>
</head>
<body>
{chr(10).join(body)}
<pre id="js-errors" data-count="-1"></pre>
</body>
</html>
"""
