"""The benchmark's figures, per compare group: first the answer, each combination's regret
against random without pruning paired by sampler seed (difference and 95% interval, the margin
band shaded, coloured by decision); then regret so far over seeds (pp below the table's best
config mean; mean line, min..max band, log axis) against trials and against training seconds as
small multiples (one panel per pruner, one line per sampler), and regret on reserved seeds
against compute per combination (its mean with the regret table's 95% t interval).

Colour says the sampler (in the paired plot, the decision); in the regret plot, marker symbol
says the pruner (circle: none). Legends sit below the plot, so they fit a phone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.colors import hex_to_rgb
from plotly.subplots import make_subplots

from bench.benchmark.regret import PRUNER_NAMES, SAMPLER_NAMES
from bench.evidence import decisions
from bench.report.benchmark import BASELINE_NAME, Benchmark
from bench.report.page_parts import Plot
from bench.report.plots import styled
from bench.report.whole_space_plots import LEGEND_BELOW

REGRET_FLOOR_PP = 0.01  # a log axis has no zero: regret at or below it is drawn at it
LOG_TICKS_PP = [0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100]
SYMBOLS = ["diamond", "square", "triangle-up", "x", "star"]
DECISION_COLORS = {decisions.BETTER: "#1a9850", decisions.EQUIVALENT: "#4575b4",
                   decisions.WORSE: "#d73027", decisions.UNDECIDED: "#888888"}


def benchmark_plots(bench: Benchmark) -> list[Plot]:
    """Four plots per compare group, in page order: the answer first."""
    plots = []
    margin_pp = bench.margin * 100
    for name, regret in bench.regret.groupby("group", sort=False):
        budget = regret["budget"].iloc[0]
        # the budget in every title, so that groups at two budgets read apart
        titled = name if pd.isna(budget) else f"{name} ({budget})"
        styles = _styles(regret)
        best_accuracy = regret["table_best_accuracy"].iloc[0]
        pairs = bench.pairs[bench.pairs["group"] == name] if len(bench.pairs) else bench.pairs
        plots.append(paired_differences(
            pairs, margin_pp, f"Benchmark {titled}: regret against {BASELINE_NAME}, paired by "
                              "sampler seed"))
        for frame, x, label in (
                (bench.by_trials, "trials_finished", "trials finished"),
                (bench.by_seconds, "cumulative_training_seconds", "cumulative training seconds")):
            plots.append(best_so_far(frame[frame["group"] == name], x, label, regret,
                                     best_accuracy,
                                     f"Benchmark {titled}: regret so far vs {label}", margin_pp))
        plots.append(regret_vs_compute(bench.runs[bench.runs["group"] == name], regret,
                                       styles, f"Benchmark {titled}: regret vs compute",
                                       margin_pp))
    return plots


def paired_differences(pairs: pd.DataFrame, margin_pp: float, title: str) -> Plot:
    """Each combination's mean regret difference from the baseline over paired sampler seeds
    (below 0: lower regret) with its 95% interval, one row each, the +-margin band shaded and
    the marker coloured by the decision; the differences' own scale, not a 0-100% axis."""
    rows = pairs[(pairs["family"] == "baseline") & pairs["regret_difference_pp"].notna()] \
        if len(pairs) else pairs
    if rows.empty:
        return Plot(title, skipped=f"no combination has regret pairs with {BASELINE_NAME}")
    rows = rows.iloc[::-1]  # the table's first combination on top
    figure = go.Figure()
    figure.add_vrect(x0=-margin_pp, x1=margin_pp, fillcolor="#999", opacity=0.15,
                     line={"color": "#555", "dash": "dot", "width": 1},
                     annotation_text=f"±{margin_pp:.2g} pp margin", annotation_position="top left")
    figure.add_vline(x=0, line={"color": "#555", "width": 1})
    # the band's edges inside the axis, so it reads as a band and not as the background
    low = min(rows["ci_low_pp"].min(), -margin_pp)
    high = max(rows["ci_high_pp"].max(), margin_pp)
    pad = (high - low) * 0.08
    figure.update_xaxes(range=[low - pad, high + pad], zeroline=False)
    for decision, color in DECISION_COLORS.items():
        part = rows[rows["decision"] == decision]
        if part.empty:
            continue
        figure.add_trace(go.Scatter(
            x=part["regret_difference_pp"], y=part["combination"], mode="markers", name=decision,
            marker={"color": color, "size": 11},
            error_x={"type": "data", "symmetric": False,
                     "array": (part["ci_high_pp"] - part["regret_difference_pp"]).fillna(0),
                     "arrayminus": (part["regret_difference_pp"] - part["ci_low_pp"]).fillna(0)},
            customdata=np.stack([part["pairs"], part["ci_low_pp"], part["ci_high_pp"]], axis=-1),
            hovertemplate="%{y}: %{x:+.2f} pp (95% CI %{customdata[1]:+.2f} to "
                          "%{customdata[2]:+.2f}) over %{customdata[0]} paired sampler seeds"
                          f"<extra>{decision}</extra>"))
    figure.update_layout(xaxis_title=f"regret minus {BASELINE_NAME}'s, pp (below 0: lower regret)",
                         yaxis={"categoryorder": "array", "categoryarray": list(rows["combination"])},
                         legend={**LEGEND_BELOW, "title": "decision"})
    return Plot(title, styled(figure, height=120 + 32 * len(rows)))


def best_so_far(frame: pd.DataFrame, x: str, label: str, regret: pd.DataFrame,
                best_accuracy: float, title: str,
                margin_pp: float = decisions.MARGIN * 100) -> Plot:
    """One panel per pruner on a shared log y axis, one line per sampler: the mean over seeds of
    how far the best so far is below the table's best config mean, in pp, with its min..max band.
    The best so far is on the search's own seed (the pick's regret on reserved seeds is the next
    plot), so it can reach or pass the table's best: drawn at REGRET_FLOOR_PP. A dotted line
    marks the report's margin."""
    pruners = list(dict.fromkeys(regret["pruner"]))
    colors = _sampler_colors(regret)
    figure = make_subplots(rows=1, cols=len(pruners), shared_yaxes=True, horizontal_spacing=0.02,
                           subplot_titles=[PRUNER_NAMES.get(p, p) for p in pruners])
    shown: set[str] = set()
    for column, pruner in enumerate(pruners, start=1):
        for sampler, color in colors.items():
            rows = frame[(frame["sampler"] == sampler) & (frame["pruner"] == pruner)].sort_values(x)
            if rows.empty:
                continue
            for trace in _line_with_band(rows, x, label, SAMPLER_NAMES.get(sampler, sampler),
                                         color, best_accuracy, show_legend=sampler not in shown):
                figure.add_trace(trace, row=1, col=column)
            shown.add(sampler)
    if not figure.data:
        return Plot(title, skipped="no compare study has a completed trial")
    for column in range(1, len(pruners) + 1):
        label_kwargs = ({"annotation_text": f"margin {margin_pp:g} pp",
                         "annotation_position": "top right"} if column == len(pruners) else {})
        figure.add_hline(y=margin_pp, line={"color": "#555", "dash": "dot", "width": 1},
                         row=1, col=column, exclude_empty_subplots=False, **label_kwargs)
    figure.update_xaxes(title_text=label)
    figure.update_yaxes(type="log", tickvals=LOG_TICKS_PP)
    figure.update_yaxes(title_text="pp below the table's best (log)", row=1, col=1)
    figure.update_annotations(font_size=12)
    figure.update_layout(legend={**LEGEND_BELOW, "title": "sampler (panels: pruner)"})
    return Plot(title, styled(figure, height=460))


def _line_with_band(rows: pd.DataFrame, x: str, label: str, name: str, color: str,
                    best_accuracy: float, show_legend: bool) -> list[go.Scatter]:
    """A sampler's min..max band over seeds (light) and its mean line, as regret in pp below
    `best_accuracy` (the worst seed is the band's top), grouped in the legend."""
    def regret(column: str) -> pd.Series:
        return ((best_accuracy - rows[column]) * 100).clip(lower=REGRET_FLOOR_PP)

    xs, upper = _steps(rows[x], regret("best_validation_accuracy_min"))
    _, lower = _steps(rows[x], regret("best_validation_accuracy_max"))
    combination = rows["combination"].iloc[0]
    band = go.Scatter(x=xs + xs[::-1], y=upper + lower[::-1], fill="toself", mode="lines",
                      fillcolor=_rgba(color, 0.15), line={"width": 0}, hoverinfo="skip",
                      name=f"{combination} (min-max over seeds)", legendgroup=name,
                      showlegend=False)
    line = go.Scatter(
        x=rows[x], y=regret("best_validation_accuracy_mean"), mode="lines", name=name,
        legendgroup=name, showlegend=show_legend, line={"color": color, "shape": "hv"},
        customdata=np.stack([rows["seeds"], rows["best_validation_accuracy_mean"],
                             rows["best_validation_accuracy_std"].fillna(0) * 100], axis=-1),
        hovertemplate=f"{combination}<br>{label} %{{x:,.4g}}<br>%{{y:.2f}} pp below the table's "
                      "best (best so far %{customdata[1]:.2%}, mean over %{customdata[0]} seeds, "
                      "± %{customdata[2]:.2f} pp)<extra></extra>")
    return [band, line]


def regret_vs_compute(runs: pd.DataFrame, regret: pd.DataFrame, styles: dict[str, dict],
                      title: str, margin_pp: float = decisions.MARGIN * 100) -> Plot:
    """Each seed's regret on reserved seeds against its compute (small), and each combination's
    mean (large): compute ± std over seeds, regret with its interval from the regret table."""
    figure = go.Figure()
    rows = regret.set_index("combination")
    for name, style in styles.items():
        seeds = runs[(runs["combination"] == name) & runs["regret_pp"].notna()]
        if seeds.empty:
            continue
        row = rows.loc[name]
        low, high = row["regret_pp_ci_low"], row["regret_pp_ci_high"]
        interval = ("no interval (one seed)" if pd.isna(low)
                    else f"95% CI {low:.2f} to {high:.2f} pp")
        figure.add_trace(go.Scatter(
            x=seeds["compute_seconds"], y=seeds["regret_pp"], mode="markers", legendgroup=name,
            name=f"{name}, one seed", showlegend=False,
            marker={"color": style["color"], "symbol": style["symbol"], "size": 7, "opacity": 0.45},
            customdata=np.stack([seeds["study"], seeds["replayed_trials"],
                                 seeds["trials_with_curve"]], axis=-1),
            hovertemplate="%{customdata[0]}<br>compute %{x:,.4g} s<br>regret "
                          "%{y:.2f} pp<br>"
                          "replayed trials %{customdata[1]} of %{customdata[2]}<extra></extra>"))
        figure.add_trace(go.Scatter(
            x=[seeds["compute_seconds"].mean()], y=[row["regret_pp_mean"]], mode="markers",
            name=name, legendgroup=name,
            marker={"color": style["color"], "symbol": style["symbol"], "size": 14,
                    "line": {"width": 1, "color": "#222"}},
            error_x={"type": "data", "array": [_std(seeds["compute_seconds"])]},
            error_y={"type": "data", "symmetric": False,
                     "array": [0.0 if pd.isna(high) else high - row["regret_pp_mean"]],
                     "arrayminus": [0.0 if pd.isna(low) else row["regret_pp_mean"] - low]},
            hovertemplate=f"{name}: mean over {len(seeds)} seeds<br>compute %{{x:,.4g}} s<br>"
                          f"regret %{{y:.2f}} pp ({interval})<br>replayed trials "
                          f"{seeds['replayed_trials'].sum()} of {seeds['trials_with_curve'].sum()}"
                          "<extra></extra>"))
    if not figure.data:
        return Plot(title, skipped="no compare study has a regret (the notes say why)")
    figure.add_hline(y=margin_pp, line={"color": "#555", "dash": "dot", "width": 1},
                     annotation_text=f"margin {margin_pp:g} pp", annotation_position="top right")
    figure.add_hline(y=0, line={"color": "#555", "width": 1})
    figure.update_layout(xaxis_title="compute used per seed (training seconds)",
                         yaxis_title="regret on reserved seeds (pp below the baseline)",
                         legend={**LEGEND_BELOW, "title": "sampler + pruner"})
    return Plot(title, styled(figure, height=480))


def _sampler_colors(regret: pd.DataFrame) -> dict[str, str]:
    """Sampler -> colour, in the regret table's order: the same in every plot of a group."""
    colors = px.colors.qualitative.Plotly
    return {sampler: colors[index % len(colors)]
            for index, sampler in enumerate(dict.fromkeys(regret["sampler"]))}


def _styles(regret: pd.DataFrame) -> dict[str, dict]:
    """Combination name -> colour (by sampler) and marker symbol (by pruner)."""
    colors = _sampler_colors(regret)
    pruners = [p for p in dict.fromkeys(regret["pruner"]) if p != "none"]
    styles = {}
    for _, row in regret.iterrows():
        pruned = row["pruner"] != "none"
        index = pruners.index(row["pruner"]) if pruned else 0
        styles[row["combination"]] = {
            "color": colors[row["sampler"]],
            "symbol": SYMBOLS[index % len(SYMBOLS)] if pruned else "circle",
        }
    return styles


def _steps(x: pd.Series, y: pd.Series) -> tuple[list[float], list[float]]:
    """The corners of a step function (value held until the next x), for a band's outline."""
    xs, ys = [], []
    for i, (a, b) in enumerate(zip(x.tolist(), y.tolist())):
        if i:
            xs.append(a)
            ys.append(ys[-1])
        xs.append(a)
        ys.append(b)
    return xs, ys


def _rgba(color: str, alpha: float) -> str:
    red, green, blue = hex_to_rgb(color)
    return f"rgba({red}, {green}, {blue}, {alpha})"


def _std(values: pd.Series) -> float:
    spread = values.std()
    return 0.0 if pd.isna(spread) else float(spread)
