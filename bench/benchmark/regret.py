"""Scores of compare studies: each study's trial costs, pick and held-out regret, per sampler +
pruner the regret with its interval over sampler seeds and the compute, and the best so far and
rank against trials and seconds. The report words and draws these numbers; it computes none.

A compare study carries the study user attr "compare" (bench.benchmark.compare writes it; schema in the
notes). Definitions, as the schema gives them:
- a trial's cost: the seconds of its learning-curve records (recorded training time; a replayed
  trial costs what its curve cost when it was measured); an invalid trial costs nothing;
- compute used: the sum of a study's trial costs; compute without pruning: per trial its
  "full_seconds" (replayed), else its own cost when it was not pruned; a pruned trial that
  trained (so has no full_seconds) is extrapolated to its planned evaluations and counted in
  `full_cost_estimated_trials`; saved by pruning: without - used;
- a config's value: the mean over its recorded training seeds in the curve table of each seed's
  best validation accuracy (bench.benchmark.compare stores the means; a replayed trial drew one seed);
- regret, NAS-Bench-201 style but held out: the best config's value ("best_in_table", the
  highest over the group's studies) minus the held-out value of the config the study picked (its
  best completed trial): its mean over the recorded seeds none of the study's trials of that
  config drew ("picked_config_heldout_mean"), in percentage points, so no sampler scores its own
  luck. A study with no held-out seed, or written before held-out scoring, has no regret (a
  note says which and why); its all-seed mean ("picked_config_mean") is kept for context, and
  where the attr has none (the table was not reachable) the picked trial's own one-seed value
  stands in there, with a note.
Regret per combination: mean over sampler seeds with a 95% Student's t interval (REGRET_METHOD).
Spread over seeds: mean, sample std (ddof 1), min and max.
Best so far is a step function per seed, evaluated on the union of all seeds' points; a seed
that has run out of trials keeps its final best.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.evidence.measurements import DEFAULT_VALIDATION_SIZE
from bench.evidence.statistics import CONFIDENCE, mean_interval
from bench.search.settings import PRUNERS, SAMPLERS
from bench.store.schema import STATE_PRUNED
from bench.store.wording import counted, pct

__all__ = ["BASELINE", "COMBINATION", "EPSILON", "PRUNER_NAMES",
           "REGRET_METHOD", "SAMPLER_NAMES", "TOLERANCE_PP", "WITHIN", "CompareScores",
           "ComparedStudy", "combination_name", "rank_over_trials", "regret_interval",
           "regret_table", "score", "trial_costs"]

TOLERANCE_PP = 0.1  # "reached the best": mean regret within this many pp
BASELINE = ("random", "none")  # the combination every other is compared with
COMBINATION = ["group", "sampler", "pruner"]
WITHIN = f"seeds_within_{TOLERANCE_PP:g}pp_fraction"
SAMPLER_NAMES = {"tpe": "TPE", "cmaes": "CMA-ES", "gp": "GP", "qmc": "QMC"}
PRUNER_NAMES = {"hyperband": "Hyperband", "sha": "SHA", "wilcoxon": "Wilcoxon",
                "none": "no pruning"}
EPSILON = 1e-9  # regrets are differences of floats: 0.1 pp must count as within 0.1 pp
REGRET_METHOD = (f"held-out regret: mean over sampler seeds with a {CONFIDENCE:.0%} Student's t "
                 "interval (scipy.stats; none under two seeds); a comparison is decided only "
                 "where two intervals do not overlap")


def no_heldout_seed(seeds: int) -> str:
    """What a study whose pick has no unseen seed needs: more seeds than the table's `seeds`."""
    return (f"no held-out seed: the table has {counted(seeds, 'seed')} of those configs; "
            f"`mnist-bench grid --seeds {seeds + 2}` adds two more")


@dataclass(frozen=True)
class ComparedStudy:
    """One compare study as its scores need it, in plain values (the report builds it from a
    loaded study)."""

    name: str
    folder_name: str  # its group where the compare record names none
    record: dict  # the study user attr "compare" (schema.STUDY_ATTR_COMPARE)
    settings: dict  # the study user attr of its search settings (schema.STUDY_ATTR_SETTINGS)
    # one row per trial, columns as bench.report.load.trials_frame makes them: state,
    # training_seconds, replayed, learning_curve, full_seconds, planned_epochs, ...
    trials: pd.DataFrame
    progress: pd.DataFrame  # best so far after each finished trial: trial, trials_finished, ...


@dataclass(frozen=True)
class CompareScores:
    """The numbers of a group of compare studies, and notes on what could not be scored."""

    runs: pd.DataFrame  # one row per compare study (one seed of one combination)
    regret: pd.DataFrame  # one row per combination
    by_trials: pd.DataFrame  # best so far over seeds against trials finished
    by_seconds: pd.DataFrame  # best so far over seeds against cumulative training seconds
    ranks: pd.DataFrame  # each combination's rank by mean best so far, against trials finished
    notes: list[str] = field(default_factory=list)


def combination_name(sampler: str, pruner: str) -> str:
    """"TPE+Hyperband", "random without pruning": how lines and legends name a combination."""
    name = SAMPLER_NAMES.get(sampler, sampler)
    if pruner == "none":
        return f"{name} without pruning"
    return f"{name}+{PRUNER_NAMES.get(pruner, pruner)}"


def trial_costs(study: ComparedStudy) -> pd.DataFrame:
    """Per finished trial in order: cost, cost had it not been pruned, replayed, best so far."""
    progress = study.progress.drop(columns="cumulative_seconds")  # wall time: not the cost
    trials = study.trials.set_index("trial").loc[progress["trial"]]
    full = [_full_cost(trial) for _, trial in trials.iterrows()]
    cost = trials["training_seconds"].astype(float).fillna(0.0).to_numpy()
    return progress.assign(
        state=trials["state"].to_numpy(),
        replayed=trials["replayed"].fillna(False).astype(bool).to_numpy(),
        has_curve=[bool(curve) for curve in trials["learning_curve"]],
        training_seconds=cost,
        cumulative_training_seconds=np.cumsum(cost),
        full_training_seconds=[seconds for seconds, _ in full],
        full_cost_estimated=[estimated for _, estimated in full],
    )


def _full_cost(trial: pd.Series) -> tuple[float, bool]:
    """A trial's training seconds had it not been pruned, and whether that is an estimate."""
    cost = float(trial["training_seconds"])
    if pd.notna(trial.get("full_seconds")):
        return float(trial["full_seconds"]), False
    if trial["state"] != STATE_PRUNED:
        return cost, False
    done = len(trial["learning_curve"] or [])
    epochs, per_epoch = trial.get("planned_epochs"), trial.get("evaluations_per_epoch")
    planned = epochs * (per_epoch if pd.notna(per_epoch) else 1) if pd.notna(epochs) else 0
    if done and planned > done:
        return cost * planned / done, True
    return cost, True  # nothing to extrapolate from: its own cost, still counted as estimated


def score(studies: Sequence[ComparedStudy]) -> CompareScores:
    """The scores, best-so-far curves and ranks of the given compare studies."""
    rows, progress, notes = [], [], []
    for study in studies:
        record, settings = study.record, study.settings
        key = {"group": record.get("group") or study.folder_name,
               "sampler": record.get("sampler") or settings.get("sampler"),
               "pruner": record.get("pruner") or settings.get("pruner")}
        costs = trial_costs(study)
        progress.append(costs.assign(**key))
        rows.append({
            **key, "space": record.get("space") or settings.get("space"),
            "combination": combination_name(key["sampler"], key["pruner"]),
            "seed": record.get("seed"), "study": study.name, "trials": len(costs),
            "best_validation_accuracy": costs["best_validation_accuracy"].max(),
            "picked_config_accuracy": record.get("picked_config_mean"),
            "picked_config_seeds": record.get("picked_config_seeds"),
            "picked_config_heldout_accuracy": record.get("picked_config_heldout_mean"),
            "picked_config_heldout_seeds": record.get("picked_config_heldout_seeds"),
            # written with held-out scoring (an attr from before it lacks the keys)
            "heldout_scoring": "picked_config_heldout_mean" in record,
            "table_best_accuracy": record.get("best_in_table"),
            "table_best_seeds": record.get("best_in_table_seeds"),
            "compute_seconds": costs["training_seconds"].sum(),
            "compute_without_pruning_seconds": costs["full_training_seconds"].sum(),
            "replayed_trials": int(costs["replayed"].sum()),
            "trials_with_curve": int(costs["has_curve"].sum()),
            "full_cost_estimated_trials": int(costs["full_cost_estimated"].sum()),
        })
    runs = _with_regret(_ordered(pd.DataFrame(rows)), notes)
    progress_frame = pd.concat(progress, ignore_index=True)
    by_trials = _over_seeds(progress_frame, "trials_finished")
    by_seconds = _over_seeds(progress_frame, "cumulative_training_seconds")
    regret = regret_table(runs)
    estimated = int(runs["full_cost_estimated_trials"].sum())
    if estimated:
        notes.append(f"{estimated} pruned trial(s) trained with no full curve on record: their "
                     "compute without pruning is extrapolated from their planned evaluations")
    return CompareScores(runs=runs, regret=regret, by_trials=by_trials, by_seconds=by_seconds,
                         ranks=rank_over_trials(by_trials), notes=notes)


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Groups by name, samplers and pruners in the order bench.search.settings lists them, then seeds."""
    rank = {"sampler": list(SAMPLERS), "pruner": list(PRUNERS)}
    keys = frame.assign(**{f"_{c}": frame[c].map(lambda v, c=c: rank[c].index(v)
                                                 if v in rank[c] else len(rank[c]))
                           for c in rank})
    keys = keys.sort_values(["group", "_sampler", "_pruner", "seed", "study"], kind="stable")
    return keys.drop(columns=["_sampler", "_pruner"]).reset_index(drop=True)


def _with_regret(runs: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Add each run's reference (its group's best config value), held-out regret (pp) and saved
    seconds."""
    runs = _picked_or_found(runs, notes)
    reference = {}
    for group, rows in runs.groupby("group", sort=False):
        table_best = pd.to_numeric(rows["table_best_accuracy"], errors="coerce")
        if table_best.notna().any():
            reference[group] = float(table_best.max())
        else:
            reference[group] = float(rows["picked_config_accuracy"].max())
            notes.append(f"group {group}: the curve table had no complete curve, so regret is "
                         f"measured from the best any of its studies found "
                         f"({pct(reference[group])})")
        beat = int((rows["picked_config_accuracy"] > reference[group] + EPSILON / 100).sum())
        if beat:
            notes.append(f"group {group}: {beat} studies picked a config whose value beats the "
                         f"table's best ({pct(reference[group])}), so their regret is "
                         "negative (the table lacked that config)")
        unfinished = int(rows["best_validation_accuracy"].isna().sum())
        if unfinished:
            notes.append(f"group {group}: {unfinished} studies have no completed trial; their "
                         "regret is left out of the means")
        notes += _unscored_notes(group, rows)
    runs = runs.assign(table_best_accuracy=runs["group"].map(reference))
    heldout = pd.to_numeric(runs["picked_config_heldout_accuracy"], errors="coerce")
    return runs.assign(
        picked_config_heldout_accuracy=heldout,
        regret_pp=(runs["table_best_accuracy"] - heldout) * 100,
        saved_by_pruning_seconds=runs["compute_without_pruning_seconds"] - runs["compute_seconds"],
    )


def _unscored_notes(group: str, rows: pd.DataFrame) -> list[str]:
    """Why studies that picked a config have no held-out regret: written before held-out
    scoring, or every recorded seed of their pick was one they saw."""
    picked = rows["best_validation_accuracy"].notna()
    scored = pd.to_numeric(rows["picked_config_heldout_accuracy"], errors="coerce").notna()
    in_table = pd.to_numeric(rows["picked_config_seeds"], errors="coerce").notna()
    before = int((picked & ~rows["heldout_scoring"].astype(bool)).sum())
    all_seen = int((picked & rows["heldout_scoring"].astype(bool) & in_table & ~scored).sum())
    notes = []
    if before:
        notes.append(f"group {group}: {before} of {len(rows)} studies were written before "
                     "held-out scoring, so they have no regret; rerunning the same `mnist-bench "
                     "compare` command adds it")
    if all_seen:
        seeds = int(pd.to_numeric(rows["picked_config_seeds"], errors="coerce")[
            picked & in_table & ~scored].max())
        notes.append(f"group {group}: {all_seen} of {len(rows)} studies saw every recorded seed "
                     f"of the config they picked, so they have no regret "
                     f"({no_heldout_seed(seeds)})")
    return notes


def _picked_or_found(runs: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """The picked config's seed mean, or the study's best trial value where the table gave none."""
    picked = pd.to_numeric(runs["picked_config_accuracy"], errors="coerce")
    missing = picked.isna() & runs["best_validation_accuracy"].notna()
    if missing.any():
        notes.append(f"{int(missing.sum())} studies have no seed mean of their picked config (the "
                     "curve table was not reachable when they were written), so no held-out "
                     "regret; the picked trial's own one-seed value stands in for the config's")
    return runs.assign(picked_config_accuracy=picked.fillna(runs["best_validation_accuracy"]))


def regret_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per combination: seeds, final best, held-out regret with its interval over sampler seeds
    (REGRET_METHOD), compute used and without pruning, replayed."""
    within = (runs["regret_pp"] <= TOLERANCE_PP + EPSILON).where(runs["regret_pp"].notna())
    table = runs.assign(within=within.astype(float)).groupby(COMBINATION, sort=False).agg(
        space=("space", "first"),
        combination=("combination", "first"),
        seeds=("study", "size"),
        heldout_studies=("regret_pp", "count"),
        trials=("trials", "mean"),
        table_best_accuracy=("table_best_accuracy", "first"),
        table_best_seeds=("table_best_seeds", "first"),
        best_validation_accuracy_mean=("best_validation_accuracy", "mean"),
        picked_config_accuracy_mean=("picked_config_accuracy", "mean"),
        picked_config_heldout_accuracy_mean=("picked_config_heldout_accuracy", "mean"),
        regret_pp_mean=("regret_pp", "mean"),
        regret_pp_ci_low=("regret_pp", lambda regrets: regret_interval(regrets)[0]),
        regret_pp_ci_high=("regret_pp", lambda regrets: regret_interval(regrets)[1]),
        regret_pp_std=("regret_pp", "std"),
        within=("within", "mean"),
        compute_seconds_mean=("compute_seconds", "mean"),
        compute_without_pruning_seconds_mean=("compute_without_pruning_seconds", "mean"),
        saved_by_pruning_seconds_mean=("saved_by_pruning_seconds", "mean"),
        replayed=("replayed_trials", "sum"),
        with_curve=("trials_with_curve", "sum"),
        full_cost_estimated_trials=("full_cost_estimated_trials", "sum"),
    ).reset_index()
    baseline = table[(table["sampler"] == BASELINE[0]) & (table["pruner"] == BASELINE[1])]
    baseline_compute = table["group"].map(baseline.set_index("group")["compute_seconds_mean"])
    used = table["compute_seconds_mean"].where(table["compute_seconds_mean"] > 0)
    table = table.assign(
        saved_by_pruning_x=table["compute_without_pruning_seconds_mean"] / used,
        # baseline (random without pruning) compute / this compute: above 1 means less compute
        less_compute_than_baseline_x=baseline_compute / used,
        replayed_trials_fraction=table["replayed"] / table["with_curve"].where(
            table["with_curve"] > 0),
    ).rename(columns={"within": WITHIN})
    return table[["group", "space", "combination", "sampler", "pruner", "seeds", "heldout_studies",
                  "trials", "table_best_accuracy", "table_best_seeds",
                  "best_validation_accuracy_mean", "picked_config_accuracy_mean",
                  "picked_config_heldout_accuracy_mean", "regret_pp_mean", "regret_pp_ci_low",
                  "regret_pp_ci_high", "regret_pp_std", WITHIN, "compute_seconds_mean",
                  "compute_without_pruning_seconds_mean", "saved_by_pruning_seconds_mean",
                  "saved_by_pruning_x", "less_compute_than_baseline_x", "replayed_trials_fraction",
                  "full_cost_estimated_trials"]]


def regret_interval(regrets: pd.Series) -> tuple[float, float]:
    """The Student's t interval (CONFIDENCE) of the mean held-out regret (pp) over sampler
    seeds, its sd at least one validation image of the default split (identical regrets are
    not certainty); NaN under two seeds with a regret (bench.evidence.statistics.mean_interval)."""
    return mean_interval(pd.to_numeric(regrets, errors="coerce").dropna().to_numpy(),
                         100 / DEFAULT_VALIDATION_SIZE)


def _over_seeds(progress: pd.DataFrame, x: str) -> pd.DataFrame:
    """Mean, std, min and max over seeds of each combination's best-so-far step functions."""
    frames = []
    for keys, combo in progress.groupby(COMBINATION, sort=False):
        wide = (combo.drop_duplicates(["study", x], keep="last")  # zero-cost trials share an x
                .pivot(index=x, columns="study", values="best_validation_accuracy")
                .sort_index().ffill())
        frames.append(pd.DataFrame({
            **dict(zip(COMBINATION, keys)),
            "combination": combination_name(keys[1], keys[2]),
            x: wide.index.to_numpy(),
            "seeds": wide.notna().sum(axis=1).to_numpy(),
            "best_validation_accuracy_mean": wide.mean(axis=1).to_numpy(),
            "best_validation_accuracy_std": wide.std(axis=1).to_numpy(),
            "best_validation_accuracy_min": wide.min(axis=1).to_numpy(),
            "best_validation_accuracy_max": wide.max(axis=1).to_numpy(),
        }))
    frame = pd.concat(frames, ignore_index=True)
    return frame[frame["seeds"] > 0].reset_index(drop=True)


def rank_over_trials(by_trials: pd.DataFrame) -> pd.DataFrame:
    """Per group and trials finished, each combination's rank (1 = best) by its mean best so far
    over seeds, ties sharing the average rank (pandas rank, method "average"): the average-rank
    plot of YAHPO Gym and kurobako. A combination that ran out of trials keeps its final mean;
    one with no completed trial yet has no rank there."""
    frames = []
    for group, rows in by_trials.groupby("group", sort=False):
        order = list(dict.fromkeys(rows["combination"]))
        names = rows.drop_duplicates("combination").set_index("combination")
        means = (rows.pivot(index="trials_finished", columns="combination",
                            values="best_validation_accuracy_mean").sort_index().ffill())[order]
        ranks = means.rank(axis=1, ascending=False, method="average")
        for combination in order:
            ranked = ranks[combination].notna()
            frames.append(pd.DataFrame({
                "group": group, "sampler": names.loc[combination, "sampler"],
                "pruner": names.loc[combination, "pruner"], "combination": combination,
                "trials_finished": ranks.index[ranked].to_numpy(),
                "best_validation_accuracy_mean": means.loc[ranked, combination].to_numpy(),
                "rank": ranks.loc[ranked, combination].to_numpy(),
                "combinations_ranked": ranks.notna().sum(axis=1)[ranked].to_numpy(),
            }))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
