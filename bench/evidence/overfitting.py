"""Over-fitting where it can exist (two or more epochs, a training subset scored like validation):
per run, the generalization gap at each epoch, the epoch of lowest validation loss, the gap at the
last epoch and the late-epoch loss of validation accuracy; then the FAQ's claim that a large FC
layer overfits (answers.OVERFIT_CLAIM), judged on runs paired along the FC axis (same base config,
same seed).

A base is a config without its FC width; its FC-width runs share the whole feature extractor, so
a base is one cluster. Per neighbouring FC step: the Hodges-Lehmann estimate of the paired
differences with a bootstrap interval over bases (bench.evidence.working_effects). Across widths:
a permutation test of the mean within-(base, seed) Spearman correlation between width and outcome,
widths permuted within each (base, seed), one-sided (grows), Holm-adjusted over the outcomes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
from scipy import stats

from bench.evidence import decisions
from bench.evidence.answers import NO_EFFECT, OVERFIT_CLAIM, SUPPORTED, UNDECIDED
from bench.evidence.whole_space import one_fidelity
from bench.evidence.working_effects import POOLING, cluster_interval, hodges_lehmann, pooling_kind
from bench.store.identity import KNOBS, measurement_keys, normalized_config
from bench.store.wording import counted, points, pp

FC = "fc_width"
MIN_EPOCHS = 2  # in one epoch every training batch is unseen: nothing over-fits yet
RUN_COLUMNS = ["config_key", "base", *KNOBS, POOLING, "rest", "seed", "lowest_loss_epoch",
               "last_epoch", "last_gap", "late_accuracy_loss", "gaps"]
PERMUTATIONS = 9999
RESAMPLES = 1999
RANDOM_SEED = 0


@dataclass(frozen=True)
class Outcome:
    """What an outcome is, in words; the margin below which its growth is of no practical
    account (None: the suite has none for it, so equivalence is never claimed); how a
    difference of it reads."""

    words: str
    margin: float | None
    difference: Callable[[float], str]


OUTCOMES = {
    "last_gap": Outcome("the generalization gap at the last epoch (validation loss minus "
                        "training-subset loss)", None, lambda value: f"{value:+.4f}"),
    "late_accuracy_loss": Outcome("the late-epoch loss of validation accuracy (peak minus last)",
                                  decisions.MARGIN, pp),
}
METHOD = ("paired runs (same base config, same seed) along FC width; per step the Hodges-Lehmann "
          f"estimate with a 95% bootstrap interval over bases ({RESAMPLES:,} resamples); "
          "growth: permutation test of the mean within-(base, seed) Spearman correlation of "
          f"outcome with width ({PERMUTATIONS:,} permutations of widths within each base and "
          f"seed, one-sided), Holm-adjusted over the {len(OUTCOMES)} outcomes, "
          f"{decisions.ALPHA:g}")
DEFINITION = f"Over-fitting: {METHOD}."  # the line a report's Definitions fold gives it


# ---------------------------------------------------------------- one run

def measured_records(curve: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The whole-split evaluations with a training-subset score, in epoch order."""
    return sorted((r for r in curve if not r.get("interim") and r.get("train_subset_loss")
                   is not None), key=lambda r: r["epoch"])


def generalization_gaps(curve: Iterable[dict[str, Any]]) -> np.ndarray:
    """Validation loss minus training-subset loss at each evaluation, in epoch order."""
    return np.array([r["validation_loss"] - r["train_subset_loss"]
                     for r in measured_records(curve)], float)


def run_measures(curve: Iterable[dict[str, Any]]) -> dict[str, float]:
    """A run's over-fitting: the epoch of lowest validation loss, the gap at the last epoch, and
    the late-epoch loss of validation accuracy (peak minus last, >= 0). Raises ValueError for a
    curve with no training-subset score (recorded before it was measured)."""
    records = measured_records(curve)
    if not records:
        raise ValueError("a curve with no training-subset score: over-fitting is not measured")
    losses = [r["validation_loss"] for r in records]
    accuracies = [r["validation_accuracy"] for r in records]
    return {"lowest_loss_epoch": float(records[int(np.argmin(losses))]["epoch"]),
            "last_epoch": float(records[-1]["epoch"]),
            "last_gap": float(records[-1]["validation_loss"] - records[-1]["train_subset_loss"]),
            "late_accuracy_loss": float(max(accuracies) - accuracies[-1])}


def run_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per run of one fidelity (the one with most configs) of a curve table's rows: its
    knobs, base, seed, measures and per-epoch gaps."""
    kept, _ = one_fidelity(rows)
    return _runs((measurement_keys(row["config"], row["fidelity"]).config, row["config"],
                  row["seed"], row["curve"]) for row in kept)


def measured_runs(measured: pd.DataFrame) -> pd.DataFrame:
    """One row per measurement of one fidelity (bench.evidence.measurements rows: the held-out
    seeds confirm raced at a budget) whose curve scored the training subset; curves recorded
    before that was measured are left out."""
    if measured["fidelity_key"].nunique() > 1:
        raise ValueError("measurements of several fidelities: over-fitting is judged at one")
    return _runs((row.config_key, row.config, row.seed, row.curve)
                 for row in measured.itertuples() if measured_records(row.curve))


def _runs(runs: Iterable[tuple[str, dict[str, Any], int, list[dict[str, Any]]]]) -> pd.DataFrame:
    """(config key, config, seed, curve) per run -> the run frame, one column per field."""
    frame = []
    for key, config, seed, curve in runs:
        config = normalized_config(config)
        frame.append({
            "config_key": key,
            # the network but its FC width, as canonical JSON: runs that differ only there
            "base": json.dumps({k: v for k, v in config.items() if k != FC}, sort_keys=True),
            **{knob: config[knob] for knob in KNOBS},
            POOLING: pooling_kind(config["pool_size"], config["pool_stride"]),
            "rest": json.dumps({k: v for k, v in config.items() if k not in KNOBS}, sort_keys=True),
            "seed": int(seed), **run_measures(curve), "gaps": generalization_gaps(curve).tolist()})
    return pd.DataFrame(frame, columns=RUN_COLUMNS)


# ---------------------------------------------------------------- pairs along FC width

def fc_pairs(runs: pd.DataFrame) -> pd.DataFrame:
    """Every pair of runs of one base with one seed at neighbouring FC widths (among those in the
    table): each outcome's difference, wider minus narrower, as `<outcome>_difference`."""
    levels = sorted(runs[FC].unique())
    low = runs.assign(high_value=runs[FC].map(dict(zip(levels, levels[1:]))))
    low = low[low["high_value"].notna()].astype({"high_value": runs[FC].dtype})
    matched = low.merge(runs, left_on=["base", "seed", "high_value"],
                        right_on=["base", "seed", FC], suffixes=("_low", "_high"))
    pairs = pd.DataFrame({
        "low_value": matched[f"{FC}_low"], "high_value": matched["high_value"],
        "low_config": matched["config_key_low"], "high_config": matched["config_key_high"],
        "base": matched["base"], "seed": matched["seed"],
        **{f"{outcome}_difference": matched[f"{outcome}_high"] - matched[f"{outcome}_low"]
           for outcome in OUTCOMES}},
        columns=["low_value", "high_value", "low_config", "high_config", "base", "seed",
                 *(f"{outcome}_difference" for outcome in OUTCOMES)])
    return pairs.sort_values(["low_value", "base", "seed"], ignore_index=True)


def step_effects(pairs: pd.DataFrame, outcome: str, rng: np.random.Generator,
                 resamples: int = RESAMPLES) -> pd.DataFrame:
    """Per FC step: the Hodges-Lehmann estimate of an outcome's paired differences, its bootstrap
    interval over bases, and the counts behind it."""
    steps = []
    for (low, high), group in pairs.groupby(["low_value", "high_value"], sort=True):
        differences = group[f"{outcome}_difference"].to_numpy(float)
        clusters = pd.factorize(group["base"])[0]
        ci_low, ci_high = cluster_interval(differences, clusters, rng, resamples)
        steps.append({"low_value": low, "high_value": high,
                      "estimate": float(hodges_lehmann(differences)), "ci_low": ci_low,
                      "ci_high": ci_high, "pairs": len(group), "bases": group["base"].nunique(),
                      "seeds": group["seed"].nunique()})
    return pd.DataFrame(steps, columns=["low_value", "high_value", "estimate", "ci_low",
                                        "ci_high", "pairs", "bases", "seeds"])


# ---------------------------------------------------------------- growth across widths

def width_trend(runs: pd.DataFrame, outcome: str, rng: np.random.Generator,
                permutations: int = PERMUTATIONS) -> tuple[float, float]:
    """The mean over (base, seed) blocks of Spearman's correlation between FC width and the
    outcome (0 in a block whose outcome does not vary), and its one-sided permutation p-value
    (widths permuted within each block): ((1 + count >= observed) / (1 + permutations))."""
    observed, shuffled, blocks = 0.0, np.zeros(permutations), 0
    for _, block in runs.groupby(["base", "seed"], sort=True):
        if block[FC].nunique() < 2:
            continue
        blocks += 1
        width = stats.rankdata(block[FC].to_numpy())
        value = stats.rankdata(block[outcome].to_numpy())
        width, value = width - width.mean(), value - value.mean()
        scale = np.sqrt((width ** 2).sum() * (value ** 2).sum())
        if scale == 0:
            continue
        observed += float(value @ width) / scale
        shuffled += rng.permuted(np.tile(value, (permutations, 1)), axis=1) @ width / scale
    if not blocks:
        return np.nan, np.nan
    exceeded = (shuffled >= observed - 1e-12 * max(abs(observed), 1.0)).sum()
    return observed / blocks, float((1 + exceeded) / (1 + permutations))


# ---------------------------------------------------------------- the claim

@dataclass(frozen=True)
class FcOverfitting:
    """The over-fitting claim (answers.OVERFIT_CLAIM) judged by one outcome."""

    outcome: str
    verdict: str  # answers.SUPPORTED, NO_EFFECT (shown not to grow past a margin) or UNDECIDED
    correlation: float  # mean within-(base, seed) Spearman of outcome with width
    p: float  # one-sided permutation p, unadjusted
    p_holm: float  # Holm-adjusted over the outcomes
    steps: pd.DataFrame  # step_effects
    bases: int
    seeds: int
    pairs: int
    runs: int

    def counts(self) -> str:
        return (f"{counted(self.bases, 'base')}, {counted(self.seeds, 'seed')}, "
                f"{counted(self.pairs, 'pair')} of {counted(self.runs, 'run')}")

    def sentence(self, at: str = "") -> str:
        """The verdict, its n and its numbers, in one sentence (`at`: the budget, where named)."""
        outcome = OUTCOMES[self.outcome]
        said = outcome.difference
        steps = "; ".join(
            f"FC {row.low_value} -> {row.high_value}: {said(row.estimate)} ("
            + (f"95% CI {said(row.ci_low)} to {said(row.ci_high)}, " if row.bases > 1
               else "no interval from one base, ")
            + f"{counted(row.pairs, 'pair')}, {counted(row.bases, 'base')})"
            for row in self.steps.itertuples())
        numbers = "; ".join(filter(None, [
            f"Spearman {self.correlation:+.2f}, p = {self.p:.3g}, Holm {self.p_holm:.3g}", steps]))
        if self.verdict == SUPPORTED:
            found = "it grows with FC width"
        elif self.verdict == NO_EFFECT:
            found = f"it grows by less than {points(outcome.margin)} at every FC step"
        else:
            found = "no evidence that it grows with FC width" + (
                "" if outcome.margin is None
                else f", nor shown to grow by less than {points(outcome.margin)}")
        return (f"{_claim(at)}, judged by {outcome.words}: "
                f"{self.verdict} "
                f"({self.counts()}): {found} ({numbers}).")


def unmeasured_sentence(at: str, runs: int, scored: int) -> str:
    """The one line for a budget whose `runs` (`scored` of them with a training-subset score)
    hold no FC-width pair."""
    if not scored:
        why = (f"none of its {counted(runs, 'run')} scored the training subset: recorded before "
               "it was measured; rerun confirm")
    else:
        why = (f"no two of its {counted(scored, 'run')} with a training-subset score share a base "
               "config and a seed at neighbouring FC widths" + (
                   f"; {counted(runs - scored, 'other run')} recorded before the subset was "
                   "scored" if scored < runs else ""))
    return f"{_claim(at)}: not measured ({why})."


def _claim(at: str) -> str:
    return f"{f'At {at}, t' if at else 'T'}he claim \"{OVERFIT_CLAIM}\""


def fc_overfitting(runs: pd.DataFrame, permutations: int = PERMUTATIONS,
                   resamples: int = RESAMPLES) -> list[FcOverfitting]:
    """The claim judged by each outcome: supported when growth's Holm-adjusted p < alpha;
    contradicted by no practical difference when every step's interval lies below the outcome's
    margin (an outcome with one); else undecided. [] where no two runs pair along FC width:
    nothing to judge."""
    rng = np.random.default_rng(RANDOM_SEED)
    fc_runs = runs[runs.groupby("base")[FC].transform("nunique") > 1]
    pairs, answers = fc_pairs(fc_runs), []
    if pairs.empty:
        return answers
    trends = {outcome: width_trend(fc_runs, outcome, rng, permutations) for outcome in OUTCOMES}
    adjusted = dict(zip(OUTCOMES, decisions.holm([p for _, p in trends.values()])))
    for outcome, measure in OUTCOMES.items():
        steps = step_effects(pairs, outcome, rng, resamples)
        correlation, p = trends[outcome]
        if adjusted[outcome] < decisions.ALPHA and correlation > 0:
            verdict = SUPPORTED
        elif (measure.margin is not None and len(steps)
              and (steps["ci_high"] < measure.margin).all()):
            verdict = NO_EFFECT
        else:
            verdict = UNDECIDED
        answers.append(FcOverfitting(
            outcome=outcome, verdict=verdict, correlation=correlation, p=p,
            p_holm=adjusted[outcome], steps=steps, bases=int(fc_runs["base"].nunique()),
            seeds=int(fc_runs["seed"].nunique()), pairs=len(pairs), runs=len(fc_runs)))
    return answers
