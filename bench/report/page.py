"""The self-contained HTML page: summary first, a table of contents, then the sections; plotly.js
embedded once."""

from __future__ import annotations

import html
from itertools import count

from plotly.offline import get_plotlyjs

from bench.report.formatting import readable
from bench.report.page_parts import Folded, Section

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
.toc ol { margin: 0.8rem 0; padding-left: 1.4rem; columns: 2 18rem; font-size: 0.9rem; }
.toc a { color: #1f77b4; text-decoration: none; }
"""


TOC_FROM = 3  # sections from which the page opens with a table of contents


def render_page(title: str, summary: list[str | Folded], notes: list[str],
                sections: list[Section]) -> str:
    """The whole page as one HTML string that opens offline."""
    tables, plots = count(), count()
    body = [f"<h1>{html.escape(title)}</h1>"]
    if summary:
        body.append('<div class="summary">' + _paragraphs(summary) + "</div>")
    body += [f'<p class="note">{html.escape(note)}</p>' for note in notes]
    if len(sections) >= TOC_FROM:
        body.append('<nav class="toc"><ol>' + "".join(
            f'<li><a href="#section-{number}">{html.escape(section.title)}</a></li>'
            for number, section in enumerate(sections, 1)) + "</ol></nav>")
    for number, section in enumerate(sections, 1):
        body.append(f'<h2 id="section-{number}">{html.escape(section.title)}</h2>')
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
<script>{get_plotlyjs()}</script>
<style>{STYLE}</style>
</head>
<body>
{chr(10).join(body)}
</body>
</html>
"""


def _paragraphs(lines: list[str | Folded]) -> str:
    """A paragraph per line; a folded block as <details> with its label as the <summary>."""
    return "".join(
        f"<details><summary>{html.escape(line.label)}</summary>"
        + "".join(f"<p>{html.escape(text)}</p>" for text in line.lines) + "</details>"
        if isinstance(line, Folded) else f"<p>{html.escape(line)}</p>" for line in lines)
