"""The report: studies in storage -> tables (CSV, Markdown) and a self-contained HTML page.

load.py reads studies into frames, tables.py and plots.py turn them into tables and figures,
benchmark.py and benchmark_plots.py do the same for compare studies (all seeds together),
glance.py writes the page's short lines and narrow tables, page.py renders the HTML, build.py
writes it all.
"""

from bench.report.build import ReportOutput, ReportSettings, build_report
from bench.report.load import NothingToReport

__all__ = ["NothingToReport", "ReportOutput", "ReportSettings", "build_report"]
