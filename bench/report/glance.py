"""What the page shows first: three short summary lines, one line per FAQ knob with its full
sentences folded under it, and narrow tables that fit a laptop's width. Each line and cell is
built from the evidence's rows with bench.evidence.answers' words, so it agrees with the numbers
and sentences beside it; the CSV files keep every column."""

from __future__ import annotations

import pandas as pd

from bench.evidence.answers import (
    CLAIMS, KNOB_NAMES, capitalized, claim_verdict, decision_counts, describe, knob_answer,
    measured,
)
from bench.evidence.decisions import MIN_SEEDS
from bench.evidence.gather import Evidence, decided_line
from bench.report.page_parts import Folded
from bench.store.identity import KNOBS
from bench.store.wording import epochs_label, mflop, mflop_cell, pct, points, pp

def summary_lines(evidence: Evidence) -> list[str]:
    """The best with its held-out mean and interval, the one to use, and how much is decided."""
    ranked, margin = evidence.ranked, f"±{points(evidence.margin)}"
    best = ranked[ranked["is_best"]].iloc[0]
    use = ranked[ranked["recommended"]].iloc[0]
    if best["heldout_seeds"] < MIN_SEEDS:
        return [f"Best so far: {describe(best)}: {measured(best)}.",
                "The one to use: the best, until `mnist-bench confirm` decides.",
                "Nothing is decided yet: `mnist-bench confirm` measures the top configs on "
                "held-out seeds."]
    if use["config_key"] == best["config_key"]:
        to_use = f"the best (no cheaper config is shown equivalent to it within {margin})"
    else:
        to_use = (f"{describe(use)}, {use['decision']} to the best within {margin}, at "
                  f"{mflop(use['flops_per_image'])} against {mflop(best['flops_per_image'])} "
                  "per image")
    return [f"Best: {describe(best)}: {measured(best)}.",
            f"The one to use: {to_use}.",
            decided_line(evidence)]


def knob_line(knob: str, pairs: pd.DataFrame, epochs: float | None = None) -> str:
    """The knob's verdict on the tutorial's claim and its pairs counted by decision (at a budget
    of `epochs`, where the pairs come from more than one)."""
    name, claim = capitalized(KNOB_NAMES[knob]), CLAIMS[knob]
    if epochs is not None:
        name += f" at {epochs_label(epochs)}"
    if pairs.empty:
        return (f"{name}: untested (\"{claim.text}\"; no pair with {MIN_SEEDS}+ held-out seeds "
                "in common).")
    verdict = claim_verdict(pairs["decision"].tolist(), claim.direction)
    return f"{name}: {verdict} (\"{claim.text}\"; {decision_counts(pairs)})."


def knob_answers(pairs: pd.DataFrame, main_fidelity: str,
                 overfitting: dict[str, list[str]]) -> list[str | Folded]:
    """Per FAQ knob: its short line, then its full sentences in a collapsible block, FC width's
    with the over-fitting claim at that budget (`overfitting`: Budget.overfitting by fidelity).
    Pairs are judged per budget (fidelity), the main one first; another budget's untested knobs
    are left out."""
    budgets = [pairs[pairs["fidelity_key"] == main_fidelity] if len(pairs) else pairs]
    if len(pairs):
        others = pairs[pairs["fidelity_key"] != main_fidelity].sort_values("budget_epochs",
                                                                          kind="stable")
        budgets += [group for _, group in others.groupby("fidelity_key", sort=False)]
    items: list[str | Folded] = []
    for budget in budgets:
        epochs = budget["budget_epochs"].iloc[0] if len(budgets) > 1 and len(budget) else None
        for knob in KNOBS:
            mine = budget[budget["knob"] == knob] if len(budget) else budget
            if mine.empty and budget is not budgets[0]:
                continue
            sentences = knob_answer(knob, mine)
            if knob == "fc_width":
                sentences += overfitting.get(
                    budget["fidelity_key"].iloc[0] if len(budget) else main_fidelity, [])
            items += [knob_line(knob, mine, epochs), Folded("In full", sentences)]
    return items


def held_fixed(pair: pd.Series, epochs: bool = False) -> str:
    """The knobs (and training) a pair holds fixed, in words; with its epochs when asked."""
    knob = pair["knob"]
    text = describe({**pair["fixed"], knob: pair["low_value"],
                     "training_label": pair.get("training_label", "")}, skip=knob)
    return f"{text}, {pair['budget_epochs']:g} epochs" if epochs else text


def accuracy_columns(ranked: pd.DataFrame, limit: int) -> pd.DataFrame:
    """The top configs in words: held-out mean with its interval and n, the decision against the
    best (and the one to use), the difference with its interval, MFLOP per image."""
    rows = []
    for _, row in ranked.head(limit).iterrows():
        decision = row["decision"] + (", the one to use" if row["recommended"] else "")
        rows.append({"config": describe(row), "held-out mean (95% CI)": _mean(row),
                     "n": row["heldout_seeds"], "decision": decision,
                     "difference from the best (95% CI)": _interval(
                         row["difference"], row["diff_ci_low"], row["diff_ci_high"]),
                     "MFLOP per image": mflop_cell(row["flops_per_image"])})
    return pd.DataFrame(rows)


def faq_columns(pairs: pd.DataFrame) -> pd.DataFrame:
    """Every FAQ pair in words: knob and values, what is held fixed, n, decision, the difference
    (larger value - smaller) with its interval, MFLOP per image of both."""
    if pairs.empty:
        return pd.DataFrame(columns=["knob", "values", "held fixed", "n", "decision"])
    epochs = pairs["budget_epochs"].nunique() > 1
    return pd.DataFrame([{
        "knob": KNOB_NAMES[row["knob"]], "values": f"{row['low_value']} -> {row['high_value']}",
        "held fixed": held_fixed(row, epochs), "n": row["pairs"], "decision": row["decision"],
        "difference (95% CI)": _interval(row["difference"], row["ci_low"], row["ci_high"]),
        "MFLOP per image": f"{mflop_cell(row['low_flops_per_image'])} -> "
                           f"{mflop_cell(row['high_flops_per_image'])}",
    } for _, row in pairs.iterrows()])


def _mean(row: pd.Series) -> str:
    if row["heldout_seeds"] >= MIN_SEEDS:
        return f"{pct(row['mean'])} ({pct(row['ci_low'])} to {pct(row['ci_high'])})"
    return f"{pct(row['mean'])} ({'one seed' if row['heldout_seeds'] == 1 else 'search value'})"


def _interval(difference: float, low: float, high: float) -> str:
    if pd.isna(difference):
        return "-"
    return f"{pp(difference)} ({pp(low)} to {pp(high)})"
