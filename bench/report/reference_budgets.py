"""Two reference tables of the same networks at two budgets, side by side: each FAQ step's answer
at the short budget (over the long table's networks) and at the long one with the change between
them (bench.evidence.budget_change), how far the short budget ranks the long one, and the
over-fitting claim where it can exist, at the long budget (bench.evidence.overfitting)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from bench.evidence import budget_change as bc
from bench.evidence import overfitting as of
from bench.evidence import whole_space as ws
from bench.evidence.budgets import AGREEMENT_METHOD
from bench.evidence.answers import KNOB_NAMES, capitalized
from bench.report import reference_answers as answers
from bench.report.page_parts import Folded, Section
from bench.store.wording import counted

__all__ = ["END", "START", "budget_section", "budgets_markdown", "comparable", "side_by_side"]

# The README's block of the FAQ at two budgets lies between these markers.
START, END = "<!-- reference-budgets:start -->", "<!-- reference-budgets:end -->"


def comparable(tables: list[tuple[Path, list[dict[str, Any]]]]
               ) -> list[tuple[tuple[Path, list], tuple[Path, list]]]:
    """(short, long) pairs of tables: the long one trains more epochs, and every network it
    measured the short one measured too."""
    measured = {path: (bc.network_seeds(rows), _epochs(rows)) for path, rows in tables}
    return [((short, short_rows), (long, long_rows))
            for short, short_rows in tables for long, long_rows in tables
            if measured[long][1] > measured[short][1]
            and set(measured[long][0]) <= set(measured[short][0])]


def side_by_side(change: bc.BudgetChange) -> pd.DataFrame:
    """Knob, step, each budget's effect with its interval and direction, the change, and whether
    the answer changed, in words."""
    short, long = answers.budget(change.short.epochs), answers.budget(change.long.epochs)
    rows = []
    for step in change.steps.itertuples():
        rows.append({
            "knob": KNOB_NAMES[step.knob],
            "step": answers.step_label(step.knob, step.low_value, step.high_value),
            f"{short}, pp": _effect(step.effect_pp_short, step.ci_low_pp_short,
                                    step.ci_high_pp_short),
            f"{short}: answer": answers.DIRECTION_WORDS[step.direction_short],
            f"{long}, pp": _effect(step.effect_pp_long, step.ci_low_pp_long, step.ci_high_pp_long),
            f"{long}: answer": answers.DIRECTION_WORDS[step.direction_long],
            "change, pp": _effect(step.change_pp, step.change_ci_low_pp, step.change_ci_high_pp),
            "pairs working at both": step.pairs_both,
            "answer": step.answer})
    return pd.DataFrame(rows)


def budget_section(change: bc.BudgetChange, long_rows: list[dict[str, Any]], short_name: str,
                   long_name: str) -> tuple[list[Section], list[str], pd.DataFrame, str]:
    """The sections (the answers at both budgets, the ranking, the over-fitting claim), their
    sentences (for summary.md), the side-by-side table (for the CSV) and the README's block."""
    table = side_by_side(change)
    short, long = answers.budget(change.short.epochs), answers.budget(change.long.epochs)
    scope, long_scope = f"{short_name} against {long_name}", long_name
    changed, ranking, overfitting = _sentences(change, long_rows)
    methods = [capitalized(bc.CHANGE_METHOD) + ".", capitalized(AGREEMENT_METHOD) + ".",
               capitalized(bc.REGRET_METHOD) + ".", of.DEFINITION]
    sections = [
        Section(f"The FAQ at {short} and at {long} ({scope})", lines=[changed],
                tables=[(f"Each knob step at both budgets, over the same "
                         f"{len(change.long.configs)} networks", table)]),
        Section(f"Does {short} rank what {long} find? ({scope})", lines=ranking),
        Section(f"Does a large FC layer over-fit? At {long} ({long_scope})",
                lines=[*overfitting, Folded("Definitions", methods)])]
    markdown = budgets_markdown(change, table, (changed, ranking, overfitting),
                                [short_name, long_name])
    return sections, [changed, *ranking, *overfitting], table, markdown


def budgets_markdown(change: bc.BudgetChange, table: pd.DataFrame,
                     sentences: tuple[str, list[str], list[str]], names: list[str]) -> str:
    """The block the README's section on the two budgets is, between its markers: regenerate it
    with `mnist-bench report` (reference_<long>_against_<short>_answers.md) and paste it.
    `table` is side_by_side(change), `sentences` _sentences(change, long_rows), `names` the
    short and long tables' file names."""
    short, long = answers.budget(change.short.epochs), answers.budget(change.long.epochs)
    (short_name, long_name), (changed, ranking, overfitting) = names, sentences
    lines = [START,
             f"The same {len(change.long.configs)} networks at {short} ({short_name}) and at "
             f"{long} ({long_name}), {answers.seeds_each(change.long)} seeds each; each step's "
             "effect among the networks that work at that budget, by the method above.", "",
             f"| knob | step | {short}, pp (95% CI) | {long}, pp (95% CI) | change, pp (95% CI) "
             "| answer |", "|---|---|---|---|---|---|"]
    for _, row in table.iterrows():
        lines.append(f"| {row['knob']} | {row['step']} | {row[f'{short}, pp']} | "
                     f"{row[f'{long}, pp']} | {row['change, pp']} | {row['answer']} |")
    lines += ["", *[f"- {line}" for line in (changed, *ranking, *overfitting)], END]
    return "\n".join(lines) + "\n"


def _sentences(change: bc.BudgetChange, long_rows: list[dict[str, Any]]
               ) -> tuple[str, list[str], list[str]]:
    """What changed, how far the short budget ranks the long one, and the over-fitting claim."""
    ranking = [_agreement_sentence(change), _regret_sentence(change), *_pick_sentences(change)]
    overfitting = [answer.sentence() for answer in of.fc_overfitting(of.run_frame(long_rows))]
    return _changed_sentence(change), ranking, overfitting


def _epochs(rows: list[dict[str, Any]]) -> float:
    kept, _ = ws.one_fidelity(rows)
    return float(kept[0]["fidelity"]["train_settings"]["epochs"])


def _adjective(epochs: float) -> str:
    """'one-epoch', '10-epoch'."""
    return "one-epoch" if epochs == 1 else f"{epochs:g}-epoch"


def _effect(estimate: float, low: float, high: float) -> str:
    if pd.isna(estimate):
        return "-"
    return f"{answers.signed(estimate)} ({answers.signed(low)} to {answers.signed(high)})"


def _changed_sentence(change: bc.BudgetChange) -> str:
    short, long = answers.budget(change.short.epochs), answers.budget(change.long.epochs)
    steps, networks = change.steps, len(change.long.configs)

    def named(answer: str) -> str:
        return "; ".join(
            f"{KNOB_NAMES[row.knob]} {answers.step_label(row.knob, row.low_value, row.high_value)}"
            f" ({answers.DIRECTION_WORDS[row.direction_short]} at {short}, "
            f"{answers.DIRECTION_WORDS[row.direction_long]} at {long})"
            for row in steps[steps["answer"] == answer].itertuples())
    changes, flips = (int((steps["answer"] == answer).sum()) for answer in (bc.CHANGES, bc.NOT_SHOWN))
    said = (f"Over these {networks} networks, "
            + (f"no knob step of {len(steps)} changes its answer" if not changes else
               f"{counted(changes, 'knob step')} of {len(steps)} "
               f"{'changes its' if changes == 1 else 'change their'} answer")
            + f" from {short} to {long}"
            + (f": {named(bc.CHANGES)}" if changes else ""))
    if flips:
        said += (f"; in {counted(flips, 'more step' if changes else 'step')} the direction "
                 "differs but the change is "
                 f"within its interval of zero: {named(bc.NOT_SHOWN)}")
    for answer, words in ((bc.SMALLER, "smaller"), (bc.LARGER, "larger")):
        kept = steps[steps["answer"] == answer]
        if len(kept):
            said += (f"; {counted(len(kept), 'step')} keep{'s' if len(kept) == 1 else ''} "
                     f"{'its' if len(kept) == 1 else 'their'} direction with a {words} effect at "
                     f"{long}: " + "; ".join(
                         f"{KNOB_NAMES[row.knob]} "
                         f"{answers.step_label(row.knob, row.low_value, row.high_value)} "
                         f"(change {answers.signed(row.change_pp)} pp)"
                         for row in kept.itertuples()))
    return said + "."


def _agreement_sentence(change: bc.BudgetChange) -> str:
    agreement = change.agreement
    short, long = answers.budget(change.short.epochs), answers.budget(change.long.epochs)
    if pd.isna(agreement["tau"]):
        return (f"Rank agreement between {short} and {long}: not measured "
                f"({counted(agreement['configs'], 'network')} with two or more seeds at both).")
    return (f"Rank agreement between {short} and {long} over "
            f"{counted(agreement['configs'], 'network')}: Kendall's tau {agreement['tau']:+.2f} "
            f"(95% CI {agreement['ci_low']:+.2f} to {agreement['ci_high']:+.2f}, "
            f"permutation p = {agreement['p']:.3g}).")


def _regret_sentence(change: bc.BudgetChange) -> str:
    regret = change.regret
    short, long = answers.budget(change.short.epochs), answers.budget(change.long.epochs)
    if regret.empty:
        return f"Held-out regret at {long} of the {short} best: not measured (no seed in common)."
    picks = "; ".join(sorted({_network(change, pick) for pick in regret["pick"]}))
    whole = (f", also the {_adjective(change.short.epochs)} best of all "
             f"{counted(change.short_networks, 'network')} measured"
             if (regret["pick"] == regret["whole_best"]).all()
             and change.short_networks > len(change.long.configs) else "")
    return (f"The {_adjective(change.short.epochs)} best of these networks ({picks}{whole}) "
            f"has a held-out regret at {long} of {_regret(regret)} against the "
            f"{_adjective(change.long.epochs)} best.")


def _pick_sentences(change: bc.BudgetChange) -> list[str]:
    """One sentence per named pick (the manifest's `picks`) measured at the long budget."""
    long = answers.budget(change.long.epochs)
    return [f"{capitalized(label)}, {_network(change, rows['pick'].iloc[0])}, has a held-out "
            f"regret at {long} of {_regret(rows)} against the "
            f"{_adjective(change.long.epochs)} best."
            for label, rows in change.picks.groupby("label", sort=False)]


def _network(change: bc.BudgetChange, network: str) -> str:
    configs = change.long.configs.set_index(change.long.configs["config_key"].map(bc.network_key))
    return answers.cell(configs.loc[network], with_fc=True)


def _regret(regret: pd.DataFrame) -> str:
    """Mean regret over the held-out seeds, with their range."""
    return (f"{regret['regret_pp'].mean():+.2f} pp (mean over "
            f"{counted(len(regret), 'held-out seed')}, {regret['regret_pp'].min():+.2f} to "
            f"{regret['regret_pp'].max():+.2f})")
