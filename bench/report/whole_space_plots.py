"""The whole-space FAQ answers as figures: per knob, every matched pair's difference (one point a
pair, grouped by neighbouring values), coloured by the knob its answer depends on most, with each
step's mean and bootstrap interval beside the points."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from bench.evidence.answers import KNOB_NAMES, capitalized, describe
from bench.evidence.whole_space import CONFIDENCE, WholeSpace, interacting_knob
from bench.evidence.whole_space_sentences import scope, stratum_label, stratum_name
from bench.report.plots import Plot, _styled
from bench.store.identity import KNOBS

JITTER = 0.12  # half the width of a step's cloud of points, in steps
MEAN_OFFSET = 0.3  # the mean and its interval sit right of the points


def whole_space_plots(space: WholeSpace) -> list[Plot]:
    """One plot per FAQ knob, in the FAQ's order."""
    return [knob_plot(space, knob) for knob in KNOBS]


def knob_plot(space: WholeSpace, knob: str) -> Plot:
    """The knob's paired differences in pp, larger value minus smaller, per neighbouring step."""
    title = f"{capitalized(KNOB_NAMES[knob])}: paired differences, {scope(space)}"
    pairs = space.pairs[space.pairs["knob"] == knob]
    steps = space.steps[space.steps["knob"] == knob].reset_index(drop=True)
    if pairs.empty:
        return Plot(title, skipped=f"no two measured configs differ only in {KNOB_NAMES[knob]} "
                                   "at neighbouring values")
    position = {(row["low_value"], row["high_value"]): i for i, row in steps.iterrows()}
    x = np.array([position[key] for key in zip(pairs["low_value"], pairs["high_value"])], float)
    x += np.random.default_rng(0).uniform(-JITTER, JITTER, len(pairs))  # fixed: same page twice
    by = interacting_knob(space, knob)
    figure = go.Figure()
    groups = ([(None, pairs.index)] if by is None
              else list(pairs.groupby(by, sort=True).groups.items()))
    colors = qualitative.Plotly
    for i, (value, index) in enumerate(groups):
        chosen = pairs.loc[index]
        figure.add_trace(go.Scatter(
            x=x[pairs.index.get_indexer(index)], y=chosen["difference"] * 100, mode="markers",
            name="matched pair" if by is None else stratum_label(by, value),
            marker={"size": 7, "color": colors[i % len(colors)], "opacity": 0.75},
            text=[html.escape(_pair_text(knob, row)) for _, row in chosen.iterrows()],
            hovertemplate="%{text}<br>difference %{y:+.2f} pp<extra></extra>"))
    figure.add_trace(go.Scatter(
        x=steps.index + MEAN_OFFSET, y=steps["mean"] * 100, mode="markers", name=(
            f"mean, {CONFIDENCE:.0%} bootstrap CI over pairs"),
        marker={"symbol": "diamond", "size": 11, "color": "black"},
        error_y={"type": "data", "symmetric": False,
                 "array": (steps["ci_high"] - steps["mean"]).fillna(0) * 100,
                 "arrayminus": (steps["mean"] - steps["ci_low"]).fillna(0) * 100},
        text=[f"{row['wins']} of {row['pairs']} pairs won, {row['losses']} lost"
              for _, row in steps.iterrows()],
        hovertemplate="mean %{y:+.2f} pp<br>%{text}<extra></extra>"))
    figure.add_hline(y=0, line={"color": "#888", "width": 1})
    figure.update_layout(
        xaxis={"tickvals": list(steps.index), "range": [-0.5, len(steps) - 0.3],
               "ticktext": [f"{row['low_value']} -> {row['high_value']}"
                            for _, row in steps.iterrows()]},
        xaxis_title=f"{KNOB_NAMES[knob]}, neighbouring values",
        yaxis_title="larger minus smaller value, pp",
        legend_title=("" if by is None else f"coloured by {stratum_name(by)}"))
    return Plot(title, _styled(figure))


def _pair_text(knob: str, row: pd.Series) -> str:
    """The pair's step and the configuration it shares."""
    fixed = describe({**{k: row[k] for k in KNOBS if k != knob}, knob: row["low_value"]},
                     skip=knob)
    return f"{KNOB_NAMES[knob]} {row['low_value']} -> {row['high_value']} ({fixed})"
