"""The report's plotly figures: Optuna's own plots where they fit, a few of ours where they don't."""

from __future__ import annotations

import html
import warnings

import optuna
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from optuna.importance import PedAnovaImportanceEvaluator

from bench.report.glance import held_fixed
from bench.report.load import STATE_COMPLETE, STATE_FAILED, STATE_PRUNED, StudyData
from bench.report.page_parts import Plot
from bench.evidence.answers import KNOB_NAMES as KNOB_LABELS, describe
from bench.store.identity import KNOBS
from bench.store.wording import within
from bench.evidence.statistics import MIN_SEEDS
from bench.report.tables import pareto_front, progress_table

ACCURACY_AXIS = {"tickformat": ".2%"}
STATE_STYLE = {  # how each trial state is drawn in the learning curves
    STATE_COMPLETE: {"color": "#1f77b4", "dash": "solid"},
    STATE_PRUNED: {"color": "#d62728", "dash": "dot"},
    STATE_FAILED: {"color": "#7f7f7f", "dash": "dash"},
}
REPLAYED_STYLE = {"dash": "longdash"}  # replaces the state's dash; the state's colour stays


def study_plots(study: StudyData) -> list[Plot]:
    """All per-study plots, in page order."""
    return [
        Plot("Optimization history", styled(optuna.visualization.plot_optimization_history(
            study.study, target_name="validation accuracy")).update_yaxes(tickformat=".2%")),
        learning_curves(study),
        param_importances(study),
        faq_plot(study, optuna.visualization.plot_slice, "FAQ parameters: slice"),
        faq_plot(study, optuna.visualization.plot_parallel_coordinate,
                 "FAQ parameters: parallel coordinates"),
        *confusion_matrices(study),
    ]


def learning_curves(study: StudyData) -> Plot:
    """Validation accuracy per epoch for every trial that trained; pruned ones dotted and red;
    replayed ones (answered from the curve table) long-dashed, fainter, and named so."""
    figure = go.Figure()
    shown = set()
    for _, trial in study.trials.sort_values("trial").iterrows():
        curve = trial["learning_curve"]
        style = STATE_STYLE.get(trial["state"])
        if not curve or style is None:
            continue
        name, how = trial["state"], trial["state"]
        if trial.get("replayed"):
            style = {**style, **REPLAYED_STYLE}
            name = f"{trial['state']}, replayed"
            source = trial.get("replayed_from") or "the curve table"
            how = f"{trial['state']}, replayed from {source}"
        figure.add_trace(go.Scatter(
            x=[point["epoch"] for point in curve],
            y=[point["validation_accuracy"] for point in curve],
            text=[" (interim subset)" if point.get("interim") else "" for point in curve],
            mode="lines+markers", name=name, legendgroup=name, showlegend=name not in shown,
            line=style, marker={"size": 5}, opacity=0.6 if trial.get("replayed") else 1.0,
            hovertemplate=f"trial {trial['trial']} ({html.escape(how)})<br>epoch %{{x}}<br>"
                          "validation accuracy %{y:.2%}%{text}<extra></extra>",
        ))
        shown.add(name)
    if not figure.data:
        return Plot("Learning curves", skipped="no trial recorded a learning curve")
    figure.update_layout(xaxis_title="epoch", yaxis_title="validation accuracy",
                         yaxis=ACCURACY_AXIS, legend_title="trial state")
    return Plot("Learning curves", styled(figure))


def varying_params(study: StudyData) -> list[str]:
    """Parameters that took more than one value among the completed trials."""
    values: dict[str, set] = {}
    for trial in study.study.get_trials(deepcopy=False,
                                        states=(optuna.trial.TrialState.COMPLETE,)):
        for name, value in trial.params.items():
            values.setdefault(name, set()).add(value)
    return sorted(name for name, seen in values.items() if len(seen) > 1)


def param_importances(study: StudyData) -> Plot:
    """Optuna's PED-ANOVA importances (needs no scikit-learn, unlike fANOVA), when they mean something."""
    title = "Parameter importances"
    params = varying_params(study)
    if len(study.completed) < 2 or len(params) < 2:
        return Plot(title, skipped="needs at least 2 completed trials and 2 parameters that vary "
                                   f"(has {len(study.completed)} and {len(params)})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few trials make PED-ANOVA warn; the plot still stands
        figure = optuna.visualization.plot_param_importances(
            study.study, params=params, evaluator=PedAnovaImportanceEvaluator())
    return Plot(title, styled(figure))


def faq_plot(study: StudyData, plot_function, title: str) -> Plot:
    """Slice or parallel coordinates of the FAQ parameters the study sampled (else of all varied)."""
    params = varying_params(study)
    faq = [p for p in KNOBS if p in params]
    if not params:
        return Plot(title, skipped="no parameter took more than one value in completed trials")
    if not faq:
        title = title.replace("FAQ parameters", "sampled parameters")
    figure = plot_function(study.study, params=faq or params, target_name="validation accuracy")
    if plot_function is optuna.visualization.plot_slice:
        figure.update_yaxes(tickformat=".2%")
    return Plot(title, styled(figure))


DECISION_COLOURS = {"better": "#2ca02c", "worse": "#d62728", "equivalent": "#1f77b4",
                    "undecided": "#999999"}


def faq_forest(pairs: pd.DataFrame) -> Plot:
    """Every FAQ pair's paired difference (larger value - smaller) with its 95% interval, the
    +-margin band shaded, coloured by decision, one row per pair, grouped by knob."""
    title = "FAQ: paired differences on held-out seeds (larger value - smaller)"
    if pairs.empty:
        return Plot(title, skipped="no two configs differ only in one knob with 2+ held-out seeds")
    rows = pairs.assign(order=pairs["knob"].map(KNOBS.index)).sort_values(
        ["order", "low_value"], kind="stable")
    epochs = rows["budget_epochs"].nunique() > 1
    labels = [f"{KNOB_LABELS[row['knob']]} {row['low_value']} -> {row['high_value']} "
              f"({held_fixed(row, epochs)})" for _, row in rows.iterrows()]
    margin = float(rows["margin"].iloc[0])
    figure = go.Figure()
    figure.add_vrect(x0=-margin * 100, x1=margin * 100, fillcolor="#1f77b4", opacity=0.12, line_width=0)
    figure.add_vline(x=0, line_color="#555555", line_width=1)
    for decision, colour in DECISION_COLOURS.items():
        part = [(label, row) for label, (_, row) in zip(labels, rows.iterrows())
                if row["decision"] == decision]
        if not part:
            continue
        figure.add_trace(go.Scatter(
            x=[row["difference"] * 100 for _, row in part], y=[label for label, _ in part],
            mode="markers", name=decision, marker={"color": colour, "size": 9},
            error_x={"type": "data", "symmetric": False,
                     "array": [(row["ci_high"] - row["difference"]) * 100 for _, row in part],
                     "arrayminus": [(row["difference"] - row["ci_low"]) * 100 for _, row in part]},
            hovertemplate="%{y}<br>%{x:+.2f} pp<extra>" + decision + "</extra>"))
    figure.update_layout(
        xaxis_title=f"difference in validation accuracy (pp); band: {within(margin)}",
        yaxis={"categoryorder": "array", "categoryarray": labels[::-1]})
    return Plot(title, styled(figure, height=max(300, 28 * len(labels) + 120)))


def accuracy_against(ranked: pd.DataFrame, column: str, label: str, log: bool) -> Plot:
    """One point per distinct config: mean over seeds, error bars from its t interval (configs
    measured once are hollow and have none), and the Pareto front of the means."""
    title = f"Validation accuracy (mean over seeds) vs {label}"
    configs = ranked[ranked[column].notna()]
    if configs.empty:
        return Plot(title, skipped=f"no config recorded {column}")
    configs = configs.assign(label=[describe(row) for _, row in configs.iterrows()],
                             pareto=pareto_front(configs[column].astype(float),
                                                 configs["mean"].astype(float)))
    figure = go.Figure()
    for repeated, name, symbol in ((True, "2+ held-out seeds (95% CI)", "circle"),
                                   (False, "no interval (search value or one seed)",
                                    "circle-open")):
        part = configs[(configs["heldout_seeds"] >= MIN_SEEDS) == repeated]
        if part.empty:
            continue
        figure.add_trace(go.Scatter(
            x=part[column], y=part["mean"], mode="markers", name=name,
            marker={"symbol": symbol, "size": 9, "color": "#1f77b4" if repeated else "#9ecae1"},
            error_y={"type": "data", "symmetric": False, "visible": repeated,
                     "array": (part["ci_high"] - part["mean"]).fillna(0),
                     "arrayminus": (part["mean"] - part["ci_low"]).fillna(0)},
            customdata=part[["label", "seeds"]],
            hovertemplate="%{customdata[0]}<br>n=%{customdata[1]} seeds<br>" + label
                          + " %{x:.3g}<br>mean validation accuracy %{y:.2%}<extra></extra>"))
    front = configs[configs["pareto"]].sort_values(column)
    figure.add_trace(go.Scatter(x=front[column], y=front["mean"], mode="lines", name="Pareto front",
                                line={"shape": "hv", "color": "#d62728"}, hoverinfo="skip"))
    for flag, name, symbol in (("is_best", "the best", "star"),
                               ("recommended", "the one to use", "diamond-open")):
        marked = configs[configs[flag]]
        figure.add_trace(go.Scatter(x=marked[column], y=marked["mean"], mode="markers", name=name,
                                    marker={"symbol": symbol, "size": 16, "color": "#2ca02c",
                                            "line": {"width": 2, "color": "#2ca02c"}},
                                    hoverinfo="skip"))
    figure.update_layout(xaxis_title=label, yaxis_title="validation accuracy (mean over seeds)",
                         yaxis=ACCURACY_AXIS, xaxis_type="log" if log else "linear")
    return Plot(title, styled(figure))


def confusion_matrices(study: StudyData) -> list[Plot]:
    """One heatmap per finetuned model that recorded a test confusion matrix."""
    plots = []
    for run in study.finetune:
        matrix = run.get("confusion_matrix")
        if not matrix:
            continue
        figure = px.imshow(matrix, text_auto=True, color_continuous_scale="Blues",
                           labels={"x": "predicted digit", "y": "true digit", "color": "images"},
                           x=[str(d) for d in range(len(matrix))],
                           y=[str(d) for d in range(len(matrix))])
        plots.append(Plot(f"Confusion matrix on the test set: finetune run {run['run']} "
                          f"(trial {run['trial_number']})", styled(figure, height=520)))
    return plots


def comparison_plots(studies: list[StudyData]) -> list[Plot]:
    """Best-so-far validation accuracy of each study against trials and against trial seconds."""
    if len(studies) < 2:
        return []
    progress = pd.concat([progress_table(s) for s in studies], ignore_index=True)
    plots = []
    for x, label in (("trials_finished", "trials finished"),
                     ("cumulative_seconds", "cumulative trial seconds")):
        figure = px.line(progress, x=x, y="best_validation_accuracy", color="study",
                         line_shape="hv", markers=True,
                         labels={x: label, "best_validation_accuracy": "best validation accuracy"})
        figure.update_layout(yaxis=ACCURACY_AXIS)
        plots.append(Plot(f"Studies compared: best so far vs {label}", styled(figure)))
    return plots


def styled(figure: go.Figure, height: int = 420) -> go.Figure:
    """Our look; the width follows the page (Optuna's slice plot sets one of 300 px per
    parameter) and the axes make room for long tick labels."""
    figure.update_layout(height=height, width=None, template="plotly_white", title=None,
                         margin={"l": 60, "r": 20, "t": 30, "b": 50})
    return figure.update_xaxes(automargin=True).update_yaxes(automargin=True)
