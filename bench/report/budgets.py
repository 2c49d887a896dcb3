"""The report's budgets part, where `confirm --epochs E` measured configs at more than one
budget: each budget's best, the one to use and FAQ verdicts side by side, how well the budgets'
rankings agree (bench.evidence.budgets), and at two or more epochs whether a large FC layer
over-fits (bench.evidence.overfitting)."""

from __future__ import annotations

import pandas as pd

from bench.evidence import overfitting as of
from bench.evidence.answers import CLAIMS, KNOB_NAMES, claim_verdict, describe, measured
from bench.evidence.budgets import AGREEMENT_METHOD, MIN_CONFIGS
from bench.evidence.decisions import ALPHA, UNDECIDED
from bench.evidence.gather import Evidence
from bench.report.page_parts import Folded, Section
from bench.store.identity import KNOBS
from bench.store.wording import counted, epochs_label, mflop


def budgets_table(evidence: Evidence) -> pd.DataFrame:
    """One row per budget: its best (held-out mean and interval), the one to use and how many
    comparisons with the best it decided."""
    rows = []
    for budget in evidence.budgets:
        ranked = budget.ranked
        best = ranked[ranked["is_best"]].iloc[0]
        use = ranked[ranked["recommended"]].iloc[0]
        others = ranked.loc[~ranked["is_best"], "decision"]
        rows.append({"budget": epochs_label(budget.epochs),
                     "configs": int((ranked["heldout_seeds"] >= 2).sum()),
                     "best": f"{describe(best)}: {measured(best)}",
                     "the one to use": f"{describe(use)} ({mflop(use['flops_per_image'])})",
                     "decided against the best": f"{int((others != UNDECIDED).sum())} of "
                                                 f"{len(others)}"})
    return pd.DataFrame(rows)


def verdicts_table(evidence: Evidence) -> pd.DataFrame:
    """Each FAQ knob's verdict on the tutorial's claim at each budget, from that budget's pairs
    ("untested" where it has none)."""
    pairs = evidence.pairs
    rows = []
    for knob in KNOBS:
        row = {"knob": KNOB_NAMES[knob]}
        for budget in evidence.budgets:
            mine = (pairs[(pairs["fidelity_key"] == budget.fidelity_key) & (pairs["knob"] == knob)]
                    if len(pairs) else pairs)
            row[epochs_label(budget.epochs)] = (
                claim_verdict(mine["decision"].tolist(), CLAIMS[knob].direction)
                if len(mine) else "untested")
        rows.append(row)
    return pd.DataFrame(rows)


def agreement_columns(evidence: Evidence) -> pd.DataFrame:
    """The search's budget against each other one: Kendall's tau with its interval, the configs
    it is over and how many decisions against the best changed."""
    frame = evidence.agreement
    if frame.empty:
        return frame
    return pd.DataFrame([{
        "budgets": f"{epochs_label(row['from_epochs'])} -> {epochs_label(row['to_epochs'])}",
        "configs": row["configs"],
        "Kendall's tau (95% CI)": (f"- (needs {MIN_CONFIGS}+ configs at both)"
                                   if pd.isna(row["tau"]) else
                                   f"{row['tau']:+.2f} ({row['ci_low']:+.2f} to "
                                   f"{row['ci_high']:+.2f}), p {row['p']:.3f}"),
        "decisions changed": row["decisions_changed"],
    } for _, row in frame.iterrows()])


def agreement_sentences(evidence: Evidence) -> list[str]:
    """One sentence per other budget, from the numbers of `agreement_columns`."""
    lines = []
    for _, row in evidence.agreement.iterrows():
        budgets = f"{epochs_label(row['from_epochs'])} and {epochs_label(row['to_epochs'])}"
        if pd.isna(row["tau"]):
            count = int(row["configs"])
            lines.append(f"Rank agreement between {budgets}: not measured "
                         f"({counted(count, 'config has', 'configs have')} 2+ held-out seeds at "
                         f"both; it needs {MIN_CONFIGS}).")
            continue
        if row["p"] < ALPHA:
            reading = ("the rankings agree more than chance" if row["tau"] > 0
                       else "the rankings are reversed more than chance")
        else:
            reading = f"p {row['p']:.3f}: the agreement is not shown"
        lines.append(f"Rank agreement between {budgets} over {row['configs']} configs: Kendall's "
                     f"tau {row['tau']:+.2f} (95% CI {row['ci_low']:+.2f} to "
                     f"{row['ci_high']:+.2f}, p {row['p']:.3f}): {reading}; "
                     f"{counted(row['decisions_changed'], 'decision')} against the best changed "
                     f"({AGREEMENT_METHOD}).")
    return lines


def overfitting_sentences(evidence: Evidence) -> list[str]:
    """The over-fitting claim at each budget of two or more epochs but the main one (whose FAQ
    answers hold it), judged on its held-out runs paired along FC width."""
    return [line for budget in evidence.budgets[1:] if budget.epochs >= of.MIN_EPOCHS
            for line in budget.overfitting]


def budgets_section(evidence: Evidence) -> Section | None:
    """The budgets side by side, or None where only one budget was measured."""
    if len(evidence.budgets) < 2:
        return None
    lines: list[str | Folded] = [*agreement_sentences(evidence),
                                 *overfitting_sentences(evidence)]
    if any(budget.fc_overfitting for budget in evidence.budgets[1:]):
        lines.append(Folded("Definitions", [of.DEFINITION]))
    for budget in evidence.budgets[1:]:
        lines.append(Folded(f"Every config against the best at {epochs_label(budget.epochs)}",
                            budget.headline))
    return Section("Budgets: the decisions at each number of epochs", lines=lines, tables=[
        ("Each budget's best and the one to use (held-out seeds of that budget only)",
         budgets_table(evidence)),
        ("The tutorial's claims at each budget", verdicts_table(evidence)),
        ("Rank agreement between budgets", agreement_columns(evidence))])
