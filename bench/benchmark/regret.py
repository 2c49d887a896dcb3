"""Scores of compare studies: each study's trial costs, pick and regret on reserved seeds, per
sampler + pruner the regret with its interval over sampler seeds and the compute, the paired
decisions between combinations, and the best so far and rank against trials and seconds. The
report words and draws these numbers; it computes none.

A compare study carries the study user attr "compare" (bench.benchmark.compare writes it; schema in the
notes). Definitions, as the schema gives them:
- a trial's cost: the seconds of its learning-curve records (recorded training time; a replayed
  trial costs what its curve cost when it was measured); an invalid trial costs nothing;
- compute used: the sum of a study's trial costs; compute without pruning: per trial its
  "full_seconds" (replayed), else its own cost when it was not pruned; a pruned trial that
  trained (so has no full_seconds) is extrapolated to its planned evaluations and counted in
  `full_cost_estimated_trials`; saved by pruning: without - used;
- a config's value on a set of seeds: the mean over those of each seed's best validation
  accuracy in the curve table;
- regret, on reserved seeds: the cross-fitted baseline's value on the reserved seeds (the config
  with the highest mean over the other, replay seeds) minus the picked config's value on the
  same reserved seeds, in percentage points. No query draws a reserved seed, and the baseline is
  selected on seeds it is not scored on, so neither side scores its own luck; the regret can be
  negative and is reported as it is. A study written by a compare before reserved seeds keeps its
  old score (its pick's seeds unseen by the study against the table's best all-seed mean), and a
  note says so.
Regret per combination: mean over sampler seeds with a 95% Student's t interval (REGRET_METHOD).
Paired decisions (PAIRED_METHOD): a combination against another, sampler seed k with sampler seed
k, on the per-seed differences of regret; bench.evidence.decisions at one look (compare runs a
fixed number of sampler seeds), the report's margin, Holm over the family.
Spread over seeds: mean, sample std (ddof 1), min and max.
Best so far is a step function per seed, evaluated on the union of all seeds' points; a seed
that has run out of trials keeps its final best.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.evidence import decisions
from bench.evidence.measurements import DEFAULT_VALIDATION_SIZE
from bench.evidence.statistics import CONFIDENCE, mean_interval
from bench.search.settings import PRUNERS, SAMPLERS
from bench.store.schema import STATE_PRUNED
from bench.store.wording import counted, epochs_label, pct

__all__ = ["BASELINE", "COMBINATION", "PAIRED_METHOD", "PRUNER_NAMES",
           "REGRET_METHOD", "SAMPLER_NAMES", "CompareScores", "ComparedStudy", "budget_label",
           "combination_name", "paired_table", "rank_over_trials", "regret_interval",
           "regret_table", "score", "trial_costs"]

BASELINE = ("random", "none")  # the combination every other is compared with
COMBINATION = ["group", "sampler", "pruner"]
RESOLUTION = 1 / DEFAULT_VALIDATION_SIZE  # one validation image: no sd is taken below it
# compare runs a fixed number of sampler seeds: one look, no sequential boundary
ONE_LOOK = decisions.Looks(first=1, last=1)
SAMPLER_NAMES = {"tpe": "TPE", "cmaes": "CMA-ES", "gp": "GP", "qmc": "QMC"}
PRUNER_NAMES = {"hyperband": "Hyperband", "sha": "SHA", "wilcoxon": "Wilcoxon",
                "none": "no pruning"}
REGRET_METHOD = (f"regret on reserved seeds against a cross-fitted baseline: mean over sampler "
                 f"seeds with a {CONFIDENCE:.0%} Student's t interval (scipy.stats; none under "
                 "two seeds)")
PAIRED_METHOD = ("paired by sampler seed: Student's t on the per-seed regret differences, "
                 "better/worse two-sided, equivalent by two one-sided tests against +-margin, "
                 "one look (a fixed number of sampler seeds), Holm over the family, 5%")


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
    pairs: pd.DataFrame  # one row per paired comparison of two combinations (paired_table)
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


def budget_label(epochs: int | None, evaluations_per_epoch: int | None) -> str | None:
    """"10 epochs, 1 evaluation per epoch": the training a group's trials replay and the steps
    its pruners judge (evaluations); what a study's settings say of it, None where nothing."""
    if epochs is None:
        return None
    if evaluations_per_epoch is None:
        return epochs_label(epochs)
    return f"{epochs_label(epochs)}, {counted(evaluations_per_epoch, 'evaluation')} per epoch"


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


def score(studies: Sequence[ComparedStudy], margin: float = decisions.MARGIN) -> CompareScores:
    """The scores, paired decisions (within `margin`, a fraction), best-so-far curves and ranks
    of the given compare studies."""
    rows, progress, notes = [], [], []
    for study in studies:
        record, settings = study.record, study.settings
        key = {"group": record.get("group") or study.folder_name,
               "sampler": record.get("sampler") or settings.get("sampler"),
               "pruner": record.get("pruner") or settings.get("pruner")}
        costs = trial_costs(study)
        progress.append(costs.assign(**key))
        reserved = record.get("reserved_seeds")
        rows.append({
            **key, "space": record.get("space") or settings.get("space"),
            "budget": budget_label(settings.get("epochs"), settings.get("evaluations_per_epoch")),
            "combination": combination_name(key["sampler"], key["pruner"]),
            "seed": record.get("seed"), "study": study.name, "trials": len(costs),
            "best_validation_accuracy": costs["best_validation_accuracy"].max(),
            # scored on reserved seeds (a compare from before them has no such key)
            "reserved_scoring": reserved is not None,
            "reserved_seeds": (", ".join(map(str, reserved)) if reserved is not None else None),
            "picked_config_accuracy": record.get("picked_config_mean"),
            "picked_config_seeds": record.get("picked_config_seeds"),
            "picked_config_reserved_accuracy": record.get("picked_config_reserved_mean"),
            "baseline_config": _params(record.get("baseline_config")),
            "baseline_replay_accuracy": record.get("baseline_replay_mean"),
            "baseline_reserved_accuracy": record.get("baseline_reserved_mean"),
            # the old scoring's fields, for studies written before reserved seeds
            "picked_config_heldout_accuracy": record.get("picked_config_heldout_mean"),
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
    pairs = paired_table(runs, margin)
    budgets = runs.drop_duplicates("group").set_index("group")["budget"]
    pairs.insert(1, "budget", pairs["group"].map(budgets))
    return CompareScores(runs=runs, regret=regret, pairs=pairs,
                         by_trials=by_trials, by_seconds=by_seconds,
                         ranks=rank_over_trials(by_trials), notes=notes)


def _params(params: dict | None) -> str | None:
    """A config's params in one cell: "kernel_size=5, pool_size=2"."""
    return None if params is None else ", ".join(f"{k}={v}" for k, v in params.items())


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Groups by name, samplers and pruners in the order bench.search.settings lists them, then seeds."""
    rank = {"sampler": list(SAMPLERS), "pruner": list(PRUNERS)}
    keys = frame.assign(**{f"_{c}": frame[c].map(lambda v, c=c: rank[c].index(v)
                                                 if v in rank[c] else len(rank[c]))
                           for c in rank})
    keys = keys.sort_values(["group", "_sampler", "_pruner", "seed", "study"], kind="stable")
    return keys.drop(columns=["_sampler", "_pruner"]).reset_index(drop=True)


def _with_regret(runs: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Add each run's regret (pp) and saved seconds: on reserved seeds against the cross-fitted
    baseline, or, for a study written before reserved seeds, the old way (_old_regret)."""
    runs = _picked_or_found(runs, notes)
    reserved = runs["reserved_scoring"].astype(bool)
    on_reserved = (pd.to_numeric(runs["baseline_reserved_accuracy"], errors="coerce")
                   - pd.to_numeric(runs["picked_config_reserved_accuracy"], errors="coerce")) * 100
    old = _old_regret(runs[~reserved], notes)
    regret = on_reserved.where(reserved, old.reindex(runs.index))
    for group, rows in runs.groupby("group", sort=False):
        unfinished = int(rows["best_validation_accuracy"].isna().sum())
        if unfinished:
            notes.append(f"group {group}: {unfinished} studies have no completed trial; their "
                         "regret is left out of the means")
        notes += _unscored_notes(group, rows, regret[rows.index])
    return runs.assign(
        picked_config_reserved_accuracy=pd.to_numeric(runs["picked_config_reserved_accuracy"],
                                                      errors="coerce"),
        regret_pp=regret,
        saved_by_pruning_seconds=runs["compute_without_pruning_seconds"] - runs["compute_seconds"],
    )


def _old_regret(runs: pd.DataFrame, notes: list[str]) -> pd.Series:
    """Regret as a compare before reserved seeds scored it: its group's best all-seed mean minus
    the pick's mean over the seeds the study did not draw (pp), which the maximum of noisy means
    overstates; said in a note."""
    regret = pd.Series(np.nan, index=runs.index)
    for group, rows in runs.groupby("group", sort=False):
        table_best = pd.to_numeric(rows["table_best_accuracy"], errors="coerce")
        best_value = (float(table_best.max()) if table_best.notna().any()
                      else float(rows["picked_config_accuracy"].max()))
        heldout = pd.to_numeric(rows["picked_config_heldout_accuracy"], errors="coerce")
        regret[rows.index] = (best_value - heldout) * 100
        notes.append(f"group {group}: {len(rows)} studies were written by a compare before "
                     f"reserved seeds, so their regret is the old one ({int(heldout.notna().sum())}"
                     f" have it): the pick's seeds its study did not draw against the table's "
                     f"best mean over all seeds ({pct(best_value)}), which the maximum of noisy "
                     "means overstates; `mnist-bench compare` with a new --group scores them on "
                     "reserved seeds")
    return regret


def _unscored_notes(group: str, rows: pd.DataFrame, regret: pd.Series) -> list[str]:
    """Why studies scored on reserved seeds that picked a config have no regret."""
    scored_new = rows["reserved_scoring"].astype(bool) & rows["best_validation_accuracy"].notna()
    missing = scored_new & regret.isna()
    if not missing.any():
        return []
    if not any(rows.loc[scored_new, "reserved_seeds"]):
        return [f"group {group}: no seed was reserved (the curve table has one seed per config), "
                "so no study has a regret; `mnist-bench grid --seeds 3` adds two"]
    if pd.to_numeric(rows["baseline_reserved_accuracy"], errors="coerce").isna().all():
        return [f"group {group}: no config of the table has the reserved seeds, so there is no "
                "baseline and no regret"]
    return [f"group {group}: {int(missing.sum())} of {len(rows)} studies picked a config the "
            "table has no reserved seed of (trained during the run, with --seed), so they have "
            "no regret"]


def _picked_or_found(runs: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """The picked config's seed mean, or the study's best trial value where the table gave none."""
    picked = pd.to_numeric(runs["picked_config_accuracy"], errors="coerce")
    missing = picked.isna() & runs["best_validation_accuracy"].notna()
    if missing.any():
        notes.append(f"{int(missing.sum())} studies have no seed mean of their picked config (the "
                     "curve table was not reachable when they were written), so no regret; the "
                     "picked trial's own one-seed value stands in for the config's")
    return runs.assign(picked_config_accuracy=picked.fillna(runs["best_validation_accuracy"]))


def regret_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per combination: seeds, final best, regret with its interval over sampler seeds
    (REGRET_METHOD), compute used and without pruning, replayed."""
    table = runs.groupby(COMBINATION, sort=False).agg(
        space=("space", "first"),
        budget=("budget", "first"),
        combination=("combination", "first"),
        seeds=("study", "size"),
        scored_studies=("regret_pp", "count"),
        reserved_seeds=("reserved_seeds", "first"),
        trials=("trials", "mean"),
        baseline_reserved_accuracy=("baseline_reserved_accuracy", "first"),
        baseline_replay_accuracy=("baseline_replay_accuracy", "first"),
        table_best_accuracy=("table_best_accuracy", "first"),
        table_best_seeds=("table_best_seeds", "first"),
        best_validation_accuracy_mean=("best_validation_accuracy", "mean"),
        picked_config_accuracy_mean=("picked_config_accuracy", "mean"),
        picked_config_reserved_accuracy_mean=("picked_config_reserved_accuracy", "mean"),
        regret_pp_mean=("regret_pp", "mean"),
        regret_pp_ci_low=("regret_pp", lambda regrets: regret_interval(regrets)[0]),
        regret_pp_ci_high=("regret_pp", lambda regrets: regret_interval(regrets)[1]),
        regret_pp_std=("regret_pp", "std"),
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
    )
    return table[["group", "space", "budget", "combination", "sampler", "pruner", "seeds",
                  "scored_studies", "reserved_seeds", "trials", "baseline_reserved_accuracy",
                  "baseline_replay_accuracy", "table_best_accuracy", "table_best_seeds",
                  "best_validation_accuracy_mean", "picked_config_accuracy_mean",
                  "picked_config_reserved_accuracy_mean", "regret_pp_mean", "regret_pp_ci_low",
                  "regret_pp_ci_high", "regret_pp_std", "compute_seconds_mean",
                  "compute_without_pruning_seconds_mean", "saved_by_pruning_seconds_mean",
                  "saved_by_pruning_x", "less_compute_than_baseline_x", "replayed_trials_fraction",
                  "full_cost_estimated_trials"]]


def paired_table(runs: pd.DataFrame, margin: float) -> pd.DataFrame:
    """Per group, two kinds of families of paired decisions (PAIRED_METHOD): every combination
    against BASELINE ("baseline"), and each pruner with a sampler against that sampler without
    pruning ("pruner <name>"). A pair is sampler seed k of both; differences are regret minus
    the regret of the combination compared with (pp), so below 0 is better."""
    frames = []
    for group, rows in runs.groupby("group", sort=False):
        combos = list(dict.fromkeys(zip(rows["sampler"], rows["pruner"])))
        families = {"baseline": [(c, BASELINE) for c in combos
                                 if c != BASELINE and BASELINE in combos]}
        for pruner in dict.fromkeys(p for _, p in combos if p != "none"):
            families[f"pruner {pruner}"] = [((s, p), (s, "none")) for s, p in combos
                                            if p == pruner and (s, "none") in combos]
        for family, members in families.items():
            if members:
                frames.append(_family(group, family, members, rows, margin))
    columns = ["group", "family", "combination", "sampler", "pruner", "compared_with",
               "compared_with_sampler", "compared_with_pruner", "pairs", "regret_difference_pp",
               "ci_low_pp", "ci_high_pp", "decision", "p_different", "p_equivalent",
               "more_seeds", "margin_pp"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def _family(group: str, family: str, members: list, rows: pd.DataFrame,
            margin: float) -> pd.DataFrame:
    """One family's paired comparisons, decided together (Holm)."""
    by_seed = rows.set_index(["sampler", "pruner", "seed"])["regret_pp"].sort_index()
    comparisons, records = [], []
    for (sampler, pruner), (with_sampler, with_pruner) in members:
        mine = by_seed.loc[(sampler, pruner)].dropna()
        theirs = by_seed.loc[(with_sampler, with_pruner)].dropna()
        shared = mine.index.intersection(theirs.index)
        regret_differences = (mine[shared] - theirs[shared]).to_numpy(float)
        # decisions compare accuracies (higher is better): a lower regret is a higher accuracy
        comparison = decisions.paired(-regret_differences / 100, margin, RESOLUTION,
                                      looks=ONE_LOOK)
        comparisons.append(comparison)
        records.append({
            "group": group, "family": family, "combination": combination_name(sampler, pruner),
            "sampler": sampler, "pruner": pruner,
            "compared_with": combination_name(with_sampler, with_pruner),
            "compared_with_sampler": with_sampler, "compared_with_pruner": with_pruner,
            "pairs": len(shared),
            "regret_difference_pp": (float(regret_differences.mean()) if len(shared)
                                     else np.nan),
            "ci_low_pp": -comparison.ci_high * 100 if comparison else np.nan,
            "ci_high_pp": -comparison.ci_low * 100 if comparison else np.nan})
    decided = decisions.decide_family(comparisons, margin, looks=ONE_LOOK)
    return pd.DataFrame([{**record, **decision, "margin_pp": margin * 100}
                         for record, decision in zip(records, decided)])


def regret_interval(regrets: pd.Series) -> tuple[float, float]:
    """The Student's t interval (CONFIDENCE) of the mean regret (pp) over sampler
    seeds, its sd at least one validation image of the default split (identical regrets are
    not certainty); NaN under two seeds with a regret (bench.evidence.statistics.mean_interval)."""
    return mean_interval(pd.to_numeric(regrets, errors="coerce").dropna().to_numpy(),
                         RESOLUTION * 100)


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
