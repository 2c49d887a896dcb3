"""Benchmark (compare) studies: best so far over seeds, regret and compute per sampler + pruner,
and one verdict line per question.

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
Regret per combination: mean over sampler seeds with a 95% Student's t interval (REGRET_METHOD);
a verdict decides only where intervals do not overlap, and says undecided where they do.
Spread over seeds: mean, sample std (ddof 1), min and max; the plots draw min..max as a band.
Best so far is a step function per seed, evaluated on the union of all seeds' points; a seed
that has run out of trials keeps its final best.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.evidence.measurements import DEFAULT_VALIDATION_SIZE
from bench.evidence.statistics import CONFIDENCE, mean_interval
from bench.report.load import STATE_PRUNED, StudyData
from bench.report.tables import progress_table
from bench.search.settings import PRUNERS, SAMPLERS
from bench.store import schema

TOLERANCE_PP = 0.1  # "reached the best": mean regret within this many pp
BASELINE = ("random", "none")  # the combination every other is compared with
COMBINATION = ["group", "sampler", "pruner"]
WITHIN = f"seeds_within_{TOLERANCE_PP:g}pp_fraction"
SAMPLER_NAMES = {"tpe": "TPE", "cmaes": "CMA-ES", "gp": "GP", "qmc": "QMC"}
PRUNER_NAMES = {"hyperband": "Hyperband", "sha": "SHA", "wilcoxon": "Wilcoxon",
                "none": "no pruning"}
_EPSILON = 1e-9  # regrets are differences of floats: 0.1 pp must count as within 0.1 pp
UNDECIDED = "undecided"
REGRET_METHOD = (f"held-out regret: mean over sampler seeds with a {CONFIDENCE:.0%} Student's t "
                 "interval (scipy.stats; none under two seeds); a comparison is decided only "
                 "where two intervals do not overlap")
NO_HELDOUT_SEED = ("no held-out seed: the table needs more seeds per config "
                   "(`mnist-bench grid --seeds 3`)")
DEFINITIONS = [
    "A config's value: the mean over its recorded training seeds in the curve table of each "
    "seed's best validation accuracy; a replayed trial draws one of those seeds per query, so its "
    "value carries measurement noise.",
    "Regret (held out): the value of the best config in the table (the space's grid at this "
    "fidelity; mean over all its seeds) minus the held-out value of the config the study picked "
    "(its best trial): its mean over the recorded seeds that none of the study's trials of that "
    "config drew, in percentage points. No sampler scores the luck of the seeds it picked on; a "
    "pick of the best config can score below zero. A study whose pick has no unseen seed has no "
    "regret.",
    f"Regret per combination: mean over sampler seeds with a {CONFIDENCE:.0%} Student's t "
    "interval (n: studies with a held-out regret; no interval under two). A verdict calls one "
    "regret lower than another, or within 0.1 pp, only where the intervals do not overlap (or "
    "the whole interval is within); otherwise it says undecided.",
    "Compute: training seconds from the recorded learning curves (a replayed trial costs what its "
    "curve cost when measured). Without pruning: every pruned trial counted at its full curve's "
    "cost. Saved by pruning = without - used; x = without / used.",
    "Best so far: the best value a study's trials found (one drawn seed each), one panel per "
    "pruner; bands: min to max over sampler seeds; a seed that ran out of trials keeps its final "
    "best.",
    "Rank: at each trial count, the combinations ranked by mean best so far over sampler seeds "
    "(1 = best, ties share the average rank).",
]


@dataclass
class Benchmark:
    """Everything the report shows about the compare studies, as frames and lines."""

    runs: pd.DataFrame  # one row per compare study (one seed of one combination)
    regret: pd.DataFrame  # one row per combination
    by_trials: pd.DataFrame  # best so far over seeds against trials finished
    by_seconds: pd.DataFrame  # best so far over seeds against cumulative training seconds
    ranks: pd.DataFrame  # each combination's rank by mean best so far, against trials finished
    verdicts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def tables(self) -> dict[str, tuple[str, pd.DataFrame]]:
        """File name -> (caption, frame), the way build.py writes and shows tables."""
        return {
            "regret": (f"Benchmark: regret and compute per sampler + pruner ({REGRET_METHOD})",
                       self.regret),
            "benchmark_runs": ("Benchmark: one row per study (seed)", self.runs),
            "best_so_far_by_trials": ("Benchmark: best so far vs trials finished", self.by_trials),
            "best_so_far_by_seconds": ("Benchmark: best so far vs cumulative training seconds",
                                       self.by_seconds),
            "rank_by_trials": ("Benchmark: rank by mean best so far vs trials finished",
                               self.ranks),
        }


def compare_record(study: StudyData) -> dict | None:
    """The study's "compare" user attr, or None for an ordinary study."""
    record = study.study.user_attrs.get(schema.STUDY_ATTR_COMPARE)
    return record if isinstance(record, dict) else None


def split_compare(studies: list[StudyData]) -> tuple[list[StudyData], list[StudyData]]:
    """(ordinary studies, compare studies), each in the order given."""
    compare = [s for s in studies if compare_record(s) is not None]
    return [s for s in studies if compare_record(s) is None], compare


def combination_name(sampler: str, pruner: str) -> str:
    """"TPE+Hyperband", "random without pruning": how lines and legends name a combination."""
    name = SAMPLER_NAMES.get(sampler, sampler)
    if pruner == "none":
        return f"{name} without pruning"
    return f"{name}+{PRUNER_NAMES.get(pruner, pruner)}"


def trial_costs(study: StudyData) -> pd.DataFrame:
    """Per finished trial in order: cost, cost had it not been pruned, replayed, best so far."""
    progress = progress_table(study).drop(columns="cumulative_seconds")  # wall time: not the cost
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


def summarize(studies: list[StudyData]) -> Benchmark:
    """The benchmark tables, curves and verdicts of the given compare studies."""
    rows, progress, notes = [], [], []
    for study in studies:
        record = compare_record(study) or {}
        settings = study.study.user_attrs.get(schema.STUDY_ATTR_SETTINGS) or {}
        key = {"group": record.get("group") or study.folder.name,
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
    return Benchmark(runs=runs, regret=regret, by_trials=by_trials, by_seconds=by_seconds,
                     ranks=rank_over_trials(by_trials), verdicts=verdicts(runs, regret),
                     notes=notes)


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
                         f"({reference[group] * 100:.2f}%)")
        beat = int((rows["picked_config_accuracy"] > reference[group] + _EPSILON / 100).sum())
        if beat:
            notes.append(f"group {group}: {beat} studies picked a config whose value beats the "
                         f"table's best ({reference[group] * 100:.2f}%), so their regret is "
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
        notes.append(f"group {group}: {all_seen} of {len(rows)} studies saw every recorded seed "
                     f"of the config they picked, so they have no regret ({NO_HELDOUT_SEED})")
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
    within = (runs["regret_pp"] <= TOLERANCE_PP + _EPSILON).where(runs["regret_pp"].notna())
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


def regret_on_page(regret: pd.DataFrame) -> pd.DataFrame:
    """The regret table's columns that fit the page (regret.csv keeps every one), with the group
    where there are several."""
    return regret[[*(["group"] if regret["group"].nunique() > 1 else []), "combination", "seeds",
                   "trials", "regret_pp_mean", "regret_pp_ci_low", "regret_pp_ci_high", WITHIN,
                   "compute_seconds_mean", "saved_by_pruning_x", "less_compute_than_baseline_x"]]


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


def verdicts(runs: pd.DataFrame, regret: pd.DataFrame) -> list[str]:
    """Per group: who reached the best with least compute, what each pruner saves, which sampler
    picked the best configs without pruning."""
    lines = []
    for group, rows in regret.groupby("group", sort=False):
        where = _where(group, rows["space"].iloc[0])
        lines.append(least_compute_verdict(where, rows))
        lines += [pruner_verdict(where, rows, pruner)
                  for pruner in rows["pruner"].unique() if pruner != "none"]
        lines.append(sampler_verdict(where, rows, runs[runs["group"] == group]))
    return lines


def least_compute_verdict(where: str, rows: pd.DataFrame) -> str:
    """(a) Which combination reached within the tolerance of the best with the least compute:
    within means its whole held-out regret interval is; one that straddles it is undecided."""
    reference = _reference(rows)
    scored = rows[rows["regret_pp_mean"].notna()]
    after = ""
    if scored.empty:
        return (f"{where}, no study has a held-out regret (the notes say why): no combination "
                f"can be said to reach {reference}.")
    status = scored.apply(_tolerance_status, axis=1)
    within = scored[status == "within"]
    if len(within):
        chosen = within.sort_values(["compute_seconds_mean", "regret_pp_mean"],
                                    kind="stable").iloc[0]
        cheaper = scored[(status == UNDECIDED)
                         & (scored["compute_seconds_mean"] < chosen["compute_seconds_mean"])]
        head = (f"{where}, {chosen['combination']} reached within {TOLERANCE_PP:g} pp of "
                f"{reference} with the least compute")
        if len(cheaper):
            head = (f"{where}, {chosen['combination']} is the cheapest combination shown to "
                    f"reach within {TOLERANCE_PP:g} pp of {reference}")
            after = (f" {UNDECIDED.capitalize()} for the cheaper {_names(cheaper)}: their regret "
                     f"intervals straddle {TOLERANCE_PP:g} pp.")
    else:
        chosen = scored.sort_values(["regret_pp_mean", "compute_seconds_mean"],
                                    kind="stable").iloc[0]
        if (status == UNDECIDED).any():
            head = (f"{where}, {UNDECIDED} which combination reaches within {TOLERANCE_PP:g} pp "
                    f"of {reference}: no regret interval lies wholly within it; "
                    f"{chosen['combination']} came closest on average")
        else:
            head = (f"{where}, no combination reached within {TOLERANCE_PP:g} pp of {reference}: "
                    f"every regret interval lies above it; {chosen['combination']} came closest")
    baseline = _baseline(rows)
    if baseline is None:
        versus = (f"{_seconds(chosen['compute_seconds_mean'])} of training per seed, regret "
                  f"{_regret(chosen)} (no random without pruning run to compare with)")
    elif baseline.name == chosen.name:
        versus = (f"{_seconds(chosen['compute_seconds_mean'])} of training per seed, regret "
                  f"{_regret(chosen)}; it is the baseline itself")
    else:
        versus = (f"{_times(baseline['compute_seconds_mean'], chosen['compute_seconds_mean'])} "
                  f"than random without pruning ({_seconds(chosen['compute_seconds_mean'])} vs "
                  f"{_seconds(baseline['compute_seconds_mean'])} of training per seed; regret "
                  f"{_regret(chosen)} vs {_regret(baseline)})")
    return f"{head}: {versus}, over {_seed_count(rows)}.{after}"


def _names(rows: pd.DataFrame) -> str:
    """"A", "A and B", "A, B and C": the rows' combinations."""
    names = list(rows["combination"])
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def pruner_verdict(where: str, rows: pd.DataFrame, pruner: str) -> str:
    """(b) What a pruner saves against no pruning with the same samplers, and whether it costs
    held-out regret: decided per sampler only where the two intervals do not overlap."""
    pruned = rows[rows["pruner"] == pruner].set_index("sampler")
    unpruned = rows[rows["pruner"] == "none"].set_index("sampler")
    name = PRUNER_NAMES.get(pruner, pruner)
    used = pruned["compute_seconds_mean"]
    unpruned_cost = pruned["compute_without_pruning_seconds_mean"]
    saved = _seconds(pruned["saved_by_pruning_seconds_mean"].mean())
    own = (f"its own trials would have cost {unpruned_cost.sum() / used.sum():.1f}x as much "
           f"unpruned ({saved} saved per seed)" if used.sum() > 0 else "its trials trained nothing")
    samplers = [s for s in pruned.index if s in unpruned.index]
    if not samplers:
        return (f"{where}, {name}: no run without pruning with the same sampler; {own}, "
                f"over {_seed_count(pruned)}.")
    none_used = unpruned.loc[samplers, "compute_seconds_mean"]
    ratios = ", ".join(f"{SAMPLER_NAMES.get(s, s)} {_times(none_used[s], used[s])}"
                       for s in samplers)
    overall = _times(none_used.sum(), used[samplers].sum())
    scored = [s for s in samplers if pd.notna(pruned.loc[s, "regret_pp_mean"])
              and pd.notna(unpruned.loc[s, "regret_pp_mean"])]
    if scored:
        costs = "; ".join(
            f"{SAMPLER_NAMES.get(s, s)} {_pruning_cost(pruned.loc[s], unpruned.loc[s])}, "
            f"{_regret(pruned.loc[s])} vs {_regret(unpruned.loc[s])}" for s in scored)
        accuracy = f"whether it costs accuracy (held-out regret with vs without it): {costs}"
    else:
        accuracy = f"whether it costs accuracy is {UNDECIDED}: no held-out regret to compare"
    both = pd.concat([pruned.loc[samplers], unpruned.loc[samplers]])
    return (f"{where}, {name} used {overall} compute than no pruning with the same samplers "
            f"({ratios}); {accuracy}; {own}, over {_seed_count(both)}.")


def sampler_verdict(where: str, rows: pd.DataFrame, runs: pd.DataFrame) -> str:
    """(c) Which sampler, without pruning, picked the configs of the best held-out value: named
    only where its regret interval lies wholly below every other's."""
    unpruned = rows[(rows["pruner"] == "none") & rows["regret_pp_mean"].notna()]
    if len(unpruned) < 2:
        return (f"{where}, fewer than two samplers have a held-out regret without pruning: no "
                "sampler comparison.")
    ranked = unpruned.sort_values(["regret_pp_mean", "sampler"], kind="stable")
    best, others = ranked.iloc[0], ranked.iloc[1:]
    trials = runs.loc[(runs["pruner"] == "none") & runs["sampler"].isin(unpruned["sampler"]),
                      "trials"]
    after = (f"{trials.min()}" if trials.min() == trials.max()
             else f"{trials.min()} to {trials.max()}")
    name = SAMPLER_NAMES.get(best["sampler"], best["sampler"])
    behind = others[[_lower(best, other) for _, other in others.iterrows()]]
    close = others.drop(index=behind.index)
    if close.empty:
        return (f"{where}, without pruning, {name} picked the best configs: after {after} "
                f"trials its held-out regret was {_regret(best)}, below every other interval "
                f"({_sampler_regrets(others)}), over {_seed_count(unpruned)}.")
    worse = ("" if behind.empty else
             f"; {_sampler_regrets(behind)} picked worse configs than {name}")
    return (f"{where}, without pruning, which sampler picks the best configs is {UNDECIDED}: "
            f"after {after} trials {name} has the lowest mean held-out regret, {_regret(best)}, "
            f"but its interval overlaps {_sampler_regrets(close)}{worse}, over "
            f"{_seed_count(unpruned)}.")


def _sampler_regrets(rows: pd.DataFrame) -> str:
    """"random 0.12 pp (95% CI ...), GP ...": each row's sampler and regret."""
    return ", ".join(f"{SAMPLER_NAMES.get(row['sampler'], row['sampler'])} {_regret(row)}"
                     for _, row in rows.iterrows())


def _tolerance_status(row: pd.Series) -> str:
    """"within" the tolerance (the whole regret interval is), "outside" (all of it above), or
    undecided (it straddles the tolerance, or there is no interval)."""
    if _shown(row["regret_pp_ci_high"]) <= TOLERANCE_PP + _EPSILON:
        return "within"
    if _shown(row["regret_pp_ci_low"]) > TOLERANCE_PP + _EPSILON:
        return "outside"
    return UNDECIDED


def _lower(row: pd.Series, other: pd.Series) -> bool:
    """Whether row's regret interval lies wholly below other's: decided lower (NaN: no)."""
    return bool(_shown(row["regret_pp_ci_high"]) < _shown(other["regret_pp_ci_low"]))


def _shown(pp: float) -> float:
    """A regret as the sentences print it (0.01 pp): decisions are taken on the shown numbers,
    so a sentence never contradicts the interval beside it."""
    return round(float(pp), 2)


def _pruning_cost(pruned: pd.Series, unpruned: pd.Series) -> str:
    if _lower(unpruned, pruned):
        return "costs accuracy"
    if _lower(pruned, unpruned):
        return "picked better configs"
    if pd.isna(pruned["regret_pp_ci_low"]) or pd.isna(unpruned["regret_pp_ci_low"]):
        return f"{UNDECIDED} (no interval)"
    return f"{UNDECIDED} (the intervals overlap)"


def _where(group: str, space: str) -> str:
    return f"On the {space} space" + ("" if group == f"compare-{space}" else f" (group {group})")


def _reference(rows: pd.DataFrame) -> str:
    """"the best config in the table (99.14%, mean of 4 training seeds)"."""
    seeds = rows["table_best_seeds"].iloc[0] if "table_best_seeds" in rows else None
    over = ("" if seeds is None or pd.isna(seeds)
            else f", mean of {int(seeds)} training seed{'' if int(seeds) == 1 else 's'}")
    return f"the best config in the table ({_pct(rows['table_best_accuracy'].iloc[0])}{over})"


def _baseline(rows: pd.DataFrame) -> pd.Series | None:
    found = rows[(rows["sampler"] == BASELINE[0]) & (rows["pruner"] == BASELINE[1])]
    return found.iloc[0] if len(found) else None


def _times(other: float, this: float) -> str:
    """This compute against another's: "3.1x less" or "1.2x more"."""
    if not this > 0 or not other > 0:
        return "n/a"
    ratio = other / this
    return f"{ratio:.1f}x less" if ratio >= 1 else f"{1 / ratio:.1f}x more"


def _regret(row: pd.Series) -> str:
    """"0.06 pp (95% CI -0.49 to 0.61)", the mean held-out regret and its interval."""
    mean, low, high = row["regret_pp_mean"], row["regret_pp_ci_low"], row["regret_pp_ci_high"]
    if pd.isna(mean):
        return "n/a (no held-out regret)"
    if pd.isna(low):
        return f"{mean:.2f} pp (one seed: no interval)"
    return f"{mean:.2f} pp ({CONFIDENCE:.0%} CI {low:.2f} to {high:.2f})"


def _seed_count(rows: pd.DataFrame) -> str:
    """"2 sampler seeds", or "2 sampler seeds (1-2 with a held-out regret)" when some studies
    have none (compute is over all of them, regret over those)."""
    low, high = int(rows["seeds"].min()), int(rows["seeds"].max())
    count = f"{low}" if low == high else f"{low}-{high}"
    text = f"{count} sampler seed{'' if high == 1 else 's'}"
    if "heldout_studies" not in rows or (rows["heldout_studies"] == rows["seeds"]).all():
        return text
    low, high = int(rows["heldout_studies"].min()), int(rows["heldout_studies"].max())
    return text + f" ({low if low == high else f'{low}-{high}'} with a held-out regret)"


def _seconds(value: float) -> str:
    return f"{value:,.0f} s" if value >= 100 else f"{value:.3g} s"


def _pct(fraction: float) -> str:
    return "n/a" if pd.isna(fraction) else f"{fraction * 100:.2f}%"
