"""All the evidence of a set of studies, computed once: the report's tables, plots and sentences
all read it, so they cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import optuna
import pandas as pd

from bench.evidence import overfitting as of
from bench.evidence.answers import headline, knob_answer, one_epoch_overfitting
from bench.evidence.budgets import Budget, agreement_table
from bench.evidence.decisions import BETTER, EQUIVALENT, MARGIN, MIN_SEEDS, WORSE, Looks
from bench.evidence.measurements import measurements
from bench.evidence.statistics import config_statistics, decide_pairs, knob_pairs, rank_against_best
from bench.store import schema
from bench.store.identity import KNOBS
from bench.store.wording import counted, epochs_label, points


@dataclass
class Evidence:
    measurements: pd.DataFrame  # one row per (fidelity, config, seed)
    ranked: pd.DataFrame  # configs of the main budget: the best, decisions, the one to use
    pairs: pd.DataFrame  # paired comparisons of every knob, every budget, decided as a family
    headline: list[str]  # the main budget's
    answers: list[str]  # the main budget's FAQ answers
    margin: float  # of practical equivalence, a fraction: the one every decision here used
    notes: list[str] = field(default_factory=list)
    budgets: list[Budget] = field(default_factory=list)  # the main budget first, then by epochs
    agreement: pd.DataFrame = field(default_factory=pd.DataFrame)  # main against each other budget

    def budget(self, fidelity: str) -> Budget | None:
        return next((b for b in self.budgets if b.fidelity_key == fidelity), None)


def gather(studies: Iterable[optuna.Study], margin: float = MARGIN) -> Evidence | None:
    """The evidence of the studies' completed trials, decided within +-`margin` (a fraction);
    None when none is a whole measurement. Decisions keep their error rates over the looks of
    the race the confirm studies planned (`race_looks`).

    The main budget is the fidelity with the most measurements (the search's); every other one
    with held-out seeds (`confirm --epochs E`) is ranked on its own, never across budgets, with
    its best picked by the search's value as at the main budget."""
    studies = list(studies)
    measured = measurements(studies)
    looks = race_looks(studies)
    if measured.empty:
        return None
    per_config = config_statistics(measured)
    main = measured["fidelity_key"].value_counts().index[0]
    heldout = {fidelity: {config: rows.sort_values("seed")["validation_accuracy"].to_numpy(float)
                          for config, rows in group.groupby("config_key")}
               for fidelity, group in measured[~measured["selection"]].groupby("fidelity_key")}
    found = [knob_pairs(measured, per_config, knob) for knob in KNOBS]
    pairs = decide_pairs(pd.concat([f for f in found if len(f)], ignore_index=True)
                         if any(len(f) for f in found) else pd.DataFrame(), margin, looks)
    searched = measured[(measured["fidelity_key"] == main) & measured["selection"]]
    selected_from = searched["config_key"].nunique()
    selection = (per_config[per_config["fidelity_key"] == main].set_index("config_key")
                 ["selection_value"])
    epochs = measured.groupby("fidelity_key")["epochs"].first()
    others = sorted((fidelity for fidelity, configs in heldout.items() if fidelity != main
                     and any(len(values) >= MIN_SEEDS for values in configs.values())),
                    key=lambda fidelity: (epochs.get(fidelity) or 0, fidelity))
    budgets = [_budget(fidelity, float(epochs.get(fidelity) or 0), per_config,
                       heldout.get(fidelity, {}),
                       pairs, margin, selected_from, None if fidelity == main else selection,
                       looks, measured[(measured["fidelity_key"] == fidelity)
                                       & ~measured["selection"]])
               for fidelity in [main, *others]]
    notes = []
    unranked = measured["fidelity_key"].nunique() - len(budgets)
    if unranked:
        notes.append(f"{counted(unranked, 'other fidelity', 'other fidelities')} (other epochs, "
                     "data or settings) measured without held-out seeds: the evidence ranks only "
                     "the configs of the fidelity with the most measurements and of the budgets "
                     "confirm measured")
    first = budgets[0]
    return Evidence(measured, first.ranked, pairs, first.headline, first.answers, margin, notes,
                    budgets, agreement_table(budgets, heldout))


def race_looks(studies: list[optuna.Study]) -> Looks:
    """The looks the confirm races among `studies` planned (their first and most seeds a
    config); the default race's where none recorded it, as for held-out seeds from elsewhere."""
    planned = [s.user_attrs[schema.STUDY_ATTR_RACE] for s in studies
               if isinstance(s.user_attrs.get(schema.STUDY_ATTR_RACE), dict)]
    if not planned:
        return Looks()
    return Looks(min(p["seeds"] for p in planned), max(p["max_seeds"] for p in planned))


def _budget(fidelity: str, epochs: float, per_config: pd.DataFrame, heldout: dict,
            pairs: pd.DataFrame, margin: float, selected_from: int, selection: pd.Series | None,
            looks: Looks, runs: pd.DataFrame) -> Budget:
    """One budget's configs against its best, its FAQ answers and, at two or more epochs, the
    over-fitting claim judged on its held-out `runs` (measurements). `selection`: the search's
    values at the main budget, for a budget the search did not measure (confirm --epochs)."""
    frame = per_config[per_config["fidelity_key"] == fidelity].reset_index(drop=True)
    if selection is not None:
        frame["selection_value"] = frame["config_key"].map(selection)
    # Configs with held-out seeds first (the ones with an interval), each group by mean: a lucky
    # single seed, or a search's own value, is never listed above a held-out mean.
    ranked = rank_against_best(frame, heldout, margin, looks).assign(
        repeated=lambda f: f["heldout_seeds"] >= MIN_SEEDS).sort_values(
        ["repeated", "mean", "seeds"], ascending=[False, False, False], kind="stable",
        ignore_index=True).drop(columns="repeated")
    own = pairs[pairs["fidelity_key"] == fidelity] if len(pairs) else pairs
    answers = [line for knob in KNOBS
               for line in knob_answer(knob, own[own["knob"] == knob] if len(own) else own)]
    judged, overfitting = _overfitting(epochs, runs,
                                       own[own["knob"] == "fc_width"] if len(own) else own)
    return Budget(fidelity, epochs, ranked, headline(ranked, selected_from),
                  answers + overfitting, judged, overfitting)


def _overfitting(epochs: float, runs: pd.DataFrame, fc_pairs: pd.DataFrame
                 ) -> tuple[list[of.FcOverfitting], list[str]]:
    """The over-fitting claim at a budget, judged on its held-out `runs` paired along FC width
    from two epochs on, and in words: the verdicts, one line where no FC pair was measured, or
    (under two epochs, where FC pairs were) why it cannot be judged."""
    if epochs < of.MIN_EPOCHS:
        return [], one_epoch_overfitting(fc_pairs)
    if runs.empty:  # no held-out seed yet: the FAQ answers say to run confirm
        return [], []
    scored = of.measured_runs(runs)
    judged, at = of.fc_overfitting(scored), epochs_label(epochs)
    return judged, ([answer.sentence(at) for answer in judged]
                    or [of.unmeasured_sentence(at, len(runs), len(scored))])


DECIDED = (BETTER, EQUIVALENT, WORSE)


def decided_line(evidence: Evidence) -> str:
    """How much is decided, as the report's summary and confirm's closing line both say it:
    the configs against the best and the FAQ pairs."""
    others = evidence.ranked.loc[~evidence.ranked["is_best"], "decision"]
    pairs = evidence.pairs["decision"] if len(evidence.pairs) else pd.Series(dtype=str)
    return (f"Decided within ±{points(evidence.margin)}: "
            f"{_decided(others, 'configs against the best')}, {_decided(pairs, 'FAQ pairs')}; "
            "the rest undecided.")


def _decided(decisions: pd.Series, what: str) -> str:
    if decisions.empty:
        return f"no {what} yet"
    return f"{int(decisions.isin(DECIDED).sum())} of {len(decisions)} {what}"
