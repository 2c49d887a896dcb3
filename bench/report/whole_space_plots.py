"""The whole-space FAQ answers as figures: per knob, the paired differences among working networks
(one point a pair, grouped by neighbouring values) on a scale that shows tenths of a point, each
step's Hodges-Lehmann estimate with its cluster bootstrap interval beside the points, and the pairs
with a failing config as triangles pinned to the axis edge (their value in the hover), so they
cannot flatten the effects the plot is about."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from bench.evidence.answers import KNOB_NAMES, capitalized, describe
from bench.evidence.whole_space import WholeSpace
from bench.evidence.working_effects import CONFIDENCE, working
from bench.report.page_parts import Plot
from bench.report.plots import styled
from bench.store.identity import KNOBS

JITTER = 0.12  # half the width of a step's cloud of points, in steps
MEAN_OFFSET = 0.3  # the estimate and its interval sit right of the points
EDGE_PAD = 0.15  # of the working range, between the points and the pinned failing pairs
WORKING_COLOR, FAILING_COLOR = "#1f77b4", "#d62728"
LEGEND_BELOW = {"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0, "xanchor": "left"}


def whole_space_plots(space: WholeSpace) -> list[Plot]:
    """One plot per FAQ knob, in the FAQ's order."""
    return [knob_plot(space, knob) for knob in KNOBS]


def knob_plot(space: WholeSpace, knob: str) -> Plot:
    """The knob's paired differences in pp among working networks, per neighbouring step."""
    title = (f"{capitalized(KNOB_NAMES[knob])}: paired differences among working networks "
             f"({space.space} space)")
    pairs = space.pairs[space.pairs["knob"] == knob]
    steps = space.working.effects[space.working.effects["knob"] == knob].reset_index(drop=True)
    if pairs.empty:
        return Plot(title, skipped=f"no two measured configs differ only in {KNOB_NAMES[knob]} "
                                   "at neighbouring values")
    works = dict(zip(space.configs["config_key"], working(space.configs)))
    good = pairs["low_config"].map(works) & pairs["high_config"].map(works)
    position = {(row["low_value"], row["high_value"]): i for i, row in steps.iterrows()}
    x = np.array([position[key] for key in zip(pairs["low_value"], pairs["high_value"])], float)
    x += np.random.default_rng(0).uniform(-JITTER, JITTER, len(pairs))  # fixed: same page twice
    y = pairs["difference"].to_numpy() * 100
    shown = np.concatenate([y[good.to_numpy()], steps[["ci_low_pp", "ci_high_pp"]].to_numpy()
                            .ravel(), [0.0]])
    low, high = np.nanmin(shown), np.nanmax(shown)
    pad = max(high - low, 0.2) * EDGE_PAD
    bottom, top = low - 2 * pad, high + 2 * pad
    figure = go.Figure()
    figure.add_trace(go.Scatter(
        x=x[good.to_numpy()], y=y[good.to_numpy()], mode="markers",
        name="both configs work",
        marker={"size": 7, "color": WORKING_COLOR, "opacity": 0.6},
        text=[html.escape(_pair_text(knob, row)) for _, row in pairs[good].iterrows()],
        hovertemplate="%{text}<br>difference %{y:+.2f} pp<extra></extra>"))
    failing = ~good.to_numpy()
    if failing.any():
        pinned = np.where(y[failing] > 0, top - pad / 2, bottom + pad / 2)
        figure.add_trace(go.Scatter(
            x=x[failing], y=pinned, mode="markers",
            name="a config fails (off the axis)",
            marker={"size": 8, "color": FAILING_COLOR, "opacity": 0.7,
                    "symbol": np.where(y[failing] > 0, "triangle-up", "triangle-down")},
            customdata=y[failing],
            text=[html.escape(_pair_text(knob, row)) for _, row in pairs[~good].iterrows()],
            hovertemplate="%{text}<br>difference %{customdata:+.1f} pp<extra></extra>"))
    figure.add_trace(go.Scatter(
        x=steps.index + MEAN_OFFSET, y=steps["effect_pp"], mode="markers",
        name=f"estimate, {CONFIDENCE:.0%} CI",
        marker={"symbol": "diamond", "size": 11, "color": "black"},
        error_y={"type": "data", "symmetric": False,
                 "array": (steps["ci_high_pp"] - steps["effect_pp"]).fillna(0),
                 "arrayminus": (steps["effect_pp"] - steps["ci_low_pp"]).fillna(0)},
        text=[f"{row['wins']} of {row['working_pairs']} working pairs won, {row['losses']} "
              f"lost; {row['failing_pairs']} pairs with a failing config apart"
              for _, row in steps.iterrows()],
        hovertemplate="%{y:+.2f} pp<br>%{text}<extra></extra>"))
    figure.add_hline(y=0, line={"color": "#888", "width": 1})
    figure.update_layout(
        xaxis={"tickvals": list(steps.index), "range": [-0.5, len(steps) - 0.3],
               "ticktext": [f"{row['low_value']} -> {row['high_value']}"
                            for _, row in steps.iterrows()],
               "title": f"{KNOB_NAMES[knob]}, neighbouring values"},
        yaxis={"range": [bottom, top], "title": "larger minus smaller, pp"},
        legend=LEGEND_BELOW)
    return Plot(title, styled(figure, height=460))


def _pair_text(knob: str, row: pd.Series) -> str:
    """The pair's step and the configuration it shares."""
    fixed = describe({**{k: row[k] for k in KNOBS if k != knob}, knob: row["low_value"]},
                     skip=knob)
    return f"{KNOB_NAMES[knob]} {row['low_value']} -> {row['high_value']} ({fixed})"
