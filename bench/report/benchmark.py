"""Benchmark (compare) studies on the page: one verdict line per question, the definitions and
the regret table's page columns. The numbers are bench.benchmark.regret's; this module words them.

A verdict decides only where intervals do not overlap, and says undecided where they do; it
decides on the numbers as the sentence shows them (0.01 pp), so a sentence never contradicts the
interval beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from bench.benchmark.regret import (BASELINE, EPSILON, PRUNER_NAMES, REGRET_METHOD,
                                    SAMPLER_NAMES, TOLERANCE_PP, WITHIN, CompareScores,
                                    ComparedStudy, score)
from bench.evidence.statistics import CONFIDENCE
from bench.report.load import StudyData
from bench.report.tables import progress_table
from bench.store import schema
from bench.store.wording import counted, pct, seconds

UNDECIDED = "undecided"

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


@dataclass(frozen=True)
class Benchmark(CompareScores):
    """Everything the report shows about the compare studies: their scores and verdict lines."""

    verdicts: list[str] = field(default_factory=list)

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

def summarize(studies: list[StudyData]) -> Benchmark:
    """The benchmark tables, curves and verdicts of the given compare studies."""
    scores = score([ComparedStudy(
        name=study.name, folder_name=study.folder.name, record=compare_record(study) or {},
        settings=study.study.user_attrs.get(schema.STUDY_ATTR_SETTINGS) or {},
        trials=study.trials, progress=progress_table(study)) for study in studies])
    return Benchmark(**vars(scores), verdicts=verdicts(scores.runs, scores.regret))


def regret_on_page(regret: pd.DataFrame) -> pd.DataFrame:
    """The regret table's columns that fit the page (regret.csv keeps every one), with the group
    where there are several."""
    return regret[[*(["group"] if regret["group"].nunique() > 1 else []), "combination", "seeds",
                   "trials", "regret_pp_mean", "regret_pp_ci_low", "regret_pp_ci_high", WITHIN,
                   "compute_seconds_mean", "saved_by_pruning_x", "less_compute_than_baseline_x"]]

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
        versus = (f"{seconds(chosen['compute_seconds_mean'])} of training per seed, regret "
                  f"{_regret(chosen)} (no random without pruning run to compare with)")
    elif baseline.name == chosen.name:
        versus = (f"{seconds(chosen['compute_seconds_mean'])} of training per seed, regret "
                  f"{_regret(chosen)}; it is the baseline itself")
    else:
        versus = (f"{_times(baseline['compute_seconds_mean'], chosen['compute_seconds_mean'])} "
                  f"than random without pruning ({seconds(chosen['compute_seconds_mean'])} vs "
                  f"{seconds(baseline['compute_seconds_mean'])} of training per seed; regret "
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
    saved = seconds(pruned["saved_by_pruning_seconds_mean"].mean())
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
    if _shown(row["regret_pp_ci_high"]) <= TOLERANCE_PP + EPSILON:
        return "within"
    if _shown(row["regret_pp_ci_low"]) > TOLERANCE_PP + EPSILON:
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
            else f", mean of {counted(int(seeds), 'training seed')}")
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
    # seeds count studies, so at least 1: a range's noun is plural
    text = counted(high, "sampler seed") if low == high else f"{low}-{high} sampler seeds"
    if "heldout_studies" not in rows or (rows["heldout_studies"] == rows["seeds"]).all():
        return text
    low, high = int(rows["heldout_studies"].min()), int(rows["heldout_studies"].max())
    return text + f" ({low if low == high else f'{low}-{high}'} with a held-out regret)"


def _pct(fraction: float) -> str:
    return "n/a" if pd.isna(fraction) else pct(fraction)
