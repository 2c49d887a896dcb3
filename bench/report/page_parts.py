"""The page's parts: a plot, a folded block of lines and a section. Every module of the report
builds them and page.py renders them; this module imports nothing of bench.report, so none of
them imports another to reach these."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import plotly.graph_objects as go


@dataclass
class Plot:
    """A figure for the page, or the reason there is none."""

    title: str
    figure: go.Figure | None = None
    skipped: str = ""


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
