"""All the evidence of a set of studies, computed once: the report's tables, plots and sentences
all read it, so they cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import optuna
import pandas as pd

from bench.evidence.answers import headline, knob_answer
from bench.evidence.measurements import KNOBS, measurements
from bench.evidence.statistics import MIN_SEEDS, best_and_ties, config_summary, knob_pairs


@dataclass
class Evidence:
    measurements: pd.DataFrame  # one row per (fidelity, config, seed)
    ranked: pd.DataFrame  # configs of the main fidelity, with best, ties and the one to use
    pairs: pd.DataFrame  # paired comparisons of every knob, every fidelity
    headline: list[str]
    answers: list[str]
    notes: list[str] = field(default_factory=list)


def gather(studies: Iterable[optuna.Study]) -> Evidence | None:
    """The evidence of the studies' completed trials; None when none is a whole measurement."""
    measured = measurements(studies)
    if measured.empty:
        return None
    summary = config_summary(measured)
    # The fidelity with the most measurements is the one the headline speaks of; configs are
    # never ranked across fidelities (other epochs or data would not be like with like).
    main = measured["fidelity_id"].value_counts().index[0]
    main_summary = summary[summary["fidelity_id"] == main].reset_index(drop=True)
    main_measured = measured[measured["fidelity_id"] == main]
    values = {config: group["validation_accuracy"].to_numpy(float)
              for config, group in main_measured.groupby("config_id")}
    # Configs measured with several seeds first (the ones with an interval), each group by mean:
    # a lucky single seed is never listed above the best mean.
    ranked = best_and_ties(main_summary, values).assign(
        repeated=lambda frame: frame["seeds"] >= MIN_SEEDS).sort_values(
        ["repeated", "mean", "seeds"], ascending=[False, False, False], kind="stable",
        ignore_index=True).drop(columns="repeated")
    pair_frames = [knob_pairs(measured, summary, knob) for knob in KNOBS]
    pairs = pd.concat([f for f in pair_frames if len(f)], ignore_index=True) \
        if any(len(f) for f in pair_frames) else pd.DataFrame()
    answers = [line for knob, frame in zip(KNOBS, pair_frames)
               for line in knob_answer(knob, frame)]
    notes = []
    others = measured["fidelity_id"].nunique() - 1
    if others:
        notes.append(f"{others} other fidelit{'y' if others == 1 else 'ies'} (other epochs, data "
                     "or settings) measured too: the headline ranks only the configs of the "
                     "fidelity with the most measurements")
    return Evidence(measured, ranked, pairs, headline(ranked), answers, notes)
