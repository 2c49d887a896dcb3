"""The report: studies in storage -> tables (CSV, Markdown) and a self-contained HTML page.

load.py reads studies into frames, tables.py and plots.py turn them into tables and figures,
benchmark.py and benchmark_plots.py word and draw the scores of compare studies (all seeds
together, computed by bench.benchmark.regret),
glance.py writes the page's short lines and narrow tables, page_parts.py holds the parts every
one of them builds (plot, folded block, section), page.py renders the HTML, build.py writes it
all, the page's parts in the order it declares. Other stages and the CLI use only the names
below; the modules are the report's own.
"""

from bench.report.build import ReportOutput, ReportSettings, build_report
from bench.report.load import NothingToReport

__all__ = ["NothingToReport", "ReportOutput", "ReportSettings", "build_report"]
