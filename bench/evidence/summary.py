"""All the evidence of a set of studies, computed once: the report's tables, plots and sentences
all read it, so they cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import optuna
import pandas as pd

from bench.evidence.answers import headline, knob_answer, overfitting_answer
from bench.evidence.decisions import MARGIN, MIN_SEEDS
from bench.evidence.measurements import measurements
from bench.evidence.statistics import config_summary, decide_pairs, knob_pairs, rank_against_best
from bench.store.identity import KNOBS


@dataclass
class Evidence:
    measurements: pd.DataFrame  # one row per (fidelity, config, seed)
    ranked: pd.DataFrame  # configs of the main fidelity: the best, decisions, the one to use
    pairs: pd.DataFrame  # paired comparisons of every knob, every fidelity, decided as a family
    headline: list[str]
    answers: list[str]
    notes: list[str] = field(default_factory=list)
    margin: float = MARGIN


def gather(studies: Iterable[optuna.Study], margin: float = MARGIN) -> Evidence | None:
    """The evidence of the studies' completed trials, decided within +-`margin` (a fraction);
    None when none is a whole measurement."""
    measured = measurements(studies)
    if measured.empty:
        return None
    summary = config_summary(measured)
    # The fidelity with the most measurements is the one the headline speaks of; configs are
    # never ranked across fidelities (other epochs or data would not be like with like).
    main = measured["fidelity_id"].value_counts().index[0]
    main_summary = summary[summary["fidelity_id"] == main].reset_index(drop=True)
    main_measured = measured[(measured["fidelity_id"] == main) & ~measured["selection"]]
    heldout = {config: group["validation_accuracy"].to_numpy(float)
               for config, group in main_measured.groupby("config_id")}
    # Configs with held-out seeds first (the ones with an interval), each group by mean: a lucky
    # single seed, or a search's own value, is never listed above a held-out mean.
    ranked = rank_against_best(main_summary, heldout, margin).assign(
        repeated=lambda frame: frame["heldout_seeds"] >= MIN_SEEDS).sort_values(
        ["repeated", "mean", "seeds"], ascending=[False, False, False], kind="stable",
        ignore_index=True).drop(columns="repeated")
    found = [knob_pairs(measured, summary, knob, margin) for knob in KNOBS]
    pairs = decide_pairs(pd.concat([f for f in found if len(f)], ignore_index=True)
                         if any(len(f) for f in found) else pd.DataFrame(), margin)
    answers = [line for knob in KNOBS
               for line in knob_answer(knob, pairs[pairs["knob"] == knob] if len(pairs)
                                       else pairs)]
    answers += overfitting_answer(pairs[pairs["knob"] == "fc_width"] if len(pairs) else pairs)
    notes = []
    others = measured["fidelity_id"].nunique() - 1
    if others:
        notes.append(f"{others} other fidelit{'y' if others == 1 else 'ies'} (other epochs, data "
                     "or settings) measured too: the headline ranks only the configs of the "
                     "fidelity with the most measurements")
    searched = measured[(measured["fidelity_id"] == main) & measured["selection"]]
    return Evidence(measured, ranked, pairs, headline(ranked, searched["config_id"].nunique()),
                    answers, notes, margin)
