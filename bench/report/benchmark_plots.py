"""The benchmark's figures, per compare group: best so far over seeds (mean line, min..max band)
against trials and against training seconds, and regret against compute per combination.

Colour says the sampler, line dash and marker symbol say the pruner (solid / circle: none).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.colors import hex_to_rgb

from bench.report.benchmark import TOLERANCE_PP, Benchmark
from bench.report.plots import ACCURACY_AXIS, Plot, _styled

DASHES = ["dot", "dash", "dashdot", "longdash", "longdashdot"]
SYMBOLS = ["diamond", "square", "triangle-up", "x", "star"]


def benchmark_plots(bench: Benchmark) -> list[Plot]:
    """Three plots per compare group, in page order."""
    plots = []
    for group, regret in bench.regret.groupby("group", sort=False):
        styles = _styles(regret)
        reference = regret["table_best_accuracy"].iloc[0]
        for frame, x, label in (
                (bench.by_trials, "trials_finished", "trials finished"),
                (bench.by_seconds, "cumulative_training_seconds", "cumulative training seconds")):
            plots.append(best_so_far(frame[frame["group"] == group], x, label, styles, reference,
                                     f"Benchmark {group}: best so far vs {label}"))
        plots.append(regret_vs_compute(bench.runs[bench.runs["group"] == group], styles,
                                       f"Benchmark {group}: regret vs compute"))
    return plots


def best_so_far(frame: pd.DataFrame, x: str, label: str, styles: dict[str, dict],
                reference: float, title: str) -> Plot:
    """Mean best-so-far validation accuracy per combination, with its min..max band over seeds."""
    figure = go.Figure()
    for name, style in styles.items():
        rows = frame[frame["combination"] == name].sort_values(x)
        if rows.empty:
            continue
        xs, upper = _steps(rows[x], rows["best_validation_accuracy_max"])
        _, lower = _steps(rows[x], rows["best_validation_accuracy_min"])
        figure.add_trace(go.Scatter(
            x=xs + xs[::-1], y=upper + lower[::-1], fill="toself", mode="lines",
            fillcolor=_rgba(style["color"], 0.15), line={"width": 0}, hoverinfo="skip",
            name=f"{name} (min-max over seeds)", legendgroup=name, showlegend=False))
        figure.add_trace(go.Scatter(
            x=rows[x], y=rows["best_validation_accuracy_mean"], mode="lines", name=name,
            legendgroup=name, line={"color": style["color"], "dash": style["dash"], "shape": "hv"},
            customdata=np.stack([rows["seeds"],
                                 rows["best_validation_accuracy_std"].fillna(0) * 100,
                                 rows["best_validation_accuracy_min"],
                                 rows["best_validation_accuracy_max"]], axis=-1),
            hovertemplate=f"{name}<br>{label} %{{x:,.4g}}<br>best so far %{{y:.2%}} mean over "
                          "%{customdata[0]} seeds (± %{customdata[1]:.2f} pp; "
                          "%{customdata[2]:.2%} to %{customdata[3]:.2%})<extra></extra>"))
    if not figure.data:
        return Plot(title, skipped="no compare study has a completed trial")
    figure.add_hline(y=reference, line={"color": "#555", "dash": "dot", "width": 1},
                     annotation_text="best in table", annotation_position="bottom right")
    figure.update_layout(xaxis_title=label, yaxis_title="best validation accuracy so far",
                         yaxis=ACCURACY_AXIS, legend_title="sampler + pruner")
    return Plot(title, _styled(figure, height=480))


def regret_vs_compute(runs: pd.DataFrame, styles: dict[str, dict], title: str) -> Plot:
    """Each seed's regret against its compute (small), and each combination's mean ± std (large)."""
    figure = go.Figure()
    for name, style in styles.items():
        seeds = runs[(runs["combination"] == name) & runs["regret_pp"].notna()]
        if seeds.empty:
            continue
        figure.add_trace(go.Scatter(
            x=seeds["compute_seconds"], y=seeds["regret_pp"], mode="markers", legendgroup=name,
            name=f"{name}, one seed", showlegend=False,
            marker={"color": style["color"], "symbol": style["symbol"], "size": 7, "opacity": 0.45},
            customdata=np.stack([seeds["study"], seeds["replayed_trials"],
                                 seeds["trials_with_curve"]], axis=-1),
            hovertemplate="%{customdata[0]}<br>compute %{x:,.4g} s<br>regret %{y:.2f} pp<br>"
                          "replayed trials %{customdata[1]} of %{customdata[2]}<extra></extra>"))
        figure.add_trace(go.Scatter(
            x=[seeds["compute_seconds"].mean()], y=[seeds["regret_pp"].mean()], mode="markers",
            name=name, legendgroup=name,
            marker={"color": style["color"], "symbol": style["symbol"], "size": 14,
                    "line": {"width": 1, "color": "#222"}},
            error_x={"type": "data", "array": [_std(seeds["compute_seconds"])]},
            error_y={"type": "data", "array": [_std(seeds["regret_pp"])]},
            hovertemplate=f"{name}: mean over {len(seeds)} seeds<br>compute %{{x:,.4g}} s<br>"
                          f"regret %{{y:.2f}} pp<br>replayed trials "
                          f"{seeds['replayed_trials'].sum()} of {seeds['trials_with_curve'].sum()}"
                          "<extra></extra>"))
    if not figure.data:
        return Plot(title, skipped="no compare study has a completed trial")
    figure.add_hline(y=TOLERANCE_PP, line={"color": "#555", "dash": "dot", "width": 1},
                     annotation_text=f"{TOLERANCE_PP:g} pp", annotation_position="top right")
    figure.update_layout(xaxis_title="compute used per seed (training seconds)",
                         yaxis_title="regret (pp below the table's best)",
                         legend_title="sampler + pruner")
    return Plot(title, _styled(figure, height=480))


def _styles(regret: pd.DataFrame) -> dict[str, dict]:
    """Combination name -> colour (by sampler), dash and marker symbol (by pruner)."""
    samplers = list(dict.fromkeys(regret["sampler"]))
    pruners = [p for p in dict.fromkeys(regret["pruner"]) if p != "none"]
    colors = px.colors.qualitative.Plotly
    styles = {}
    for _, row in regret.iterrows():
        pruned = row["pruner"] != "none"
        index = pruners.index(row["pruner"]) if pruned else 0
        styles[row["combination"]] = {
            "color": colors[samplers.index(row["sampler"]) % len(colors)],
            "dash": DASHES[index % len(DASHES)] if pruned else "solid",
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
