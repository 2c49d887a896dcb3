"""Benchmark (compare) studies on the page: one verdict line per question, the definitions and
the regret table's page columns. The numbers are bench.benchmark.regret's; this module words them.

Every verdict is a paired decision of bench.benchmark.regret.paired_table (better, equivalent
within the report's margin, worse, or undecided with the sampler seeds it would take), the
suite's one decision rule; the regret's own interval is shown beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from bench.benchmark.regret import (BASELINE, PAIRED_METHOD, PRUNER_NAMES, REGRET_METHOD,
                                    SAMPLER_NAMES, CompareScores, ComparedStudy,
                                    combination_name, score)
from bench.evidence import decisions
from bench.evidence.statistics import CONFIDENCE
from bench.report.load import StudyData
from bench.report.tables import progress_table
from bench.store import schema
from bench.store.wording import counted, seconds, within

UNDECIDED = decisions.UNDECIDED
BASELINE_NAME = combination_name(*BASELINE)
# a combination no worse than the baseline, decided: it can stand in for it
MATCHED = (decisions.BETTER, decisions.EQUIVALENT)


def definitions(margin: float) -> list[str]:
    """What the Benchmark section's words and numbers mean, at this report's margin."""
    return [
        "A config's value on some seeds: the mean over them of each seed's best validation "
        "accuracy in the curve table. A replayed trial draws one recorded seed per query, never a "
        "reserved one, so its value carries measurement noise.",
        "Regret (on reserved seeds): the baseline config's value on the reserved seeds minus the "
        "picked config's value there (the pick is the study's best trial), in percentage points. "
        "The baseline is the config with the highest mean over the other (replay) seeds: it is "
        "selected and scored on different seeds, so its value is not the maximum of noisy means. "
        "No study drew a reserved seed; a regret can be below zero and is shown as it is.",
        f"Regret per combination: mean over sampler seeds with a {CONFIDENCE:.0%} Student's t "
        "interval (n: studies with a regret; no interval under two).",
        f"Decisions: {PAIRED_METHOD}; margin {within(margin)} (report --margin). A difference is "
        "a regret minus that of the combination compared with, below 0 is better; undecided says about how many "
        "sampler seeds would decide.",
        "Compute: training seconds from the recorded learning curves (a replayed trial costs what "
        "its curve cost when measured). Without pruning: every pruned trial counted at its full "
        "curve's cost. Saved by pruning = without - used; x = without / used.",
        "Best so far: the best value a study's trials found (one drawn seed each), one panel per "
        "pruner; bands: min to max over sampler seeds; a seed that ran out of trials keeps its "
        "final best.",
        "Rank: at each trial count, the combinations ranked by mean best so far over sampler "
        "seeds (1 = best, ties share the average rank).",
    ]


@dataclass(frozen=True)
class Benchmark(CompareScores):
    """Everything the report shows about the compare studies: their scores and verdict lines."""

    margin: float = decisions.MARGIN
    verdicts: list[str] = field(default_factory=list)

    def tables(self) -> dict[str, tuple[str, pd.DataFrame]]:
        """File name -> (caption, frame), the way build.py writes and shows tables."""
        return {
            "regret": (f"Benchmark: regret and compute per sampler + pruner ({REGRET_METHOD})",
                       self.regret),
            "benchmark_pairs": (f"Benchmark: paired decisions ({PAIRED_METHOD}; margin "
                                f"{within(self.margin)})", self.pairs),
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


def summarize(studies: list[StudyData], margin: float = decisions.MARGIN) -> Benchmark:
    """The benchmark tables, curves and verdicts of the given compare studies, decided within
    `margin` (a fraction: the report's --margin)."""
    scores = score([ComparedStudy(
        name=study.name, folder_name=study.folder.name, record=compare_record(study) or {},
        settings=study.study.user_attrs.get(schema.STUDY_ATTR_SETTINGS) or {},
        trials=study.trials, progress=progress_table(study)) for study in studies], margin)
    return Benchmark(**vars(scores), margin=margin,
                     verdicts=verdicts(scores.runs, scores.regret, scores.pairs, margin))


def regret_on_page(bench: Benchmark) -> pd.DataFrame:
    """The regret table's columns that fit the page (regret.csv keeps every one), with each
    combination's decision against the baseline, and the group where there are several."""
    regret = bench.regret
    against = bench.pairs[bench.pairs["family"] == "baseline"].set_index(
        ["group", "combination"])["decision"] if len(bench.pairs) else pd.Series(dtype=object)
    decision = [against.get((group, name), "the baseline" if name == BASELINE_NAME else "")
                for group, name in zip(regret["group"], regret["combination"])]
    page = regret.assign(**{f"vs {BASELINE_NAME}": decision})
    several = ["group", "budget"] if regret["group"].nunique() > 1 else []
    return page[[*several, "combination", "seeds",
                 "trials", "regret_pp_mean", "regret_pp_ci_low", "regret_pp_ci_high",
                 f"vs {BASELINE_NAME}", "compute_seconds_mean", "saved_by_pruning_x",
                 "less_compute_than_baseline_x"]]


def verdicts(runs: pd.DataFrame, regret: pd.DataFrame, pairs: pd.DataFrame,
             margin: float) -> list[str]:
    """Per group: what matched the baseline with least compute, what each pruner saves and
    costs, which sampler picked better configs without pruning. With several groups (such as
    one budget of training and another), each question's lines follow one another, group by
    group: one pruner's verdicts at every budget side by side."""
    questions: dict[str, list[str]] = {}
    for group, rows in regret.groupby("group", sort=False):
        where = _where(group, rows["space"].iloc[0], rows["budget"].iloc[0])
        mine = pairs[pairs["group"] == group] if len(pairs) else pairs
        questions.setdefault("least compute", []).append(
            least_compute_verdict(where, rows, mine, margin))
        for pruner in rows["pruner"].unique():
            if pruner != "none":
                questions.setdefault(f"pruner {pruner}", []).append(
                    pruner_verdict(where, rows, pruner, mine, margin))
        questions.setdefault("sampler", []).append(
            sampler_verdict(where, rows, mine, runs[runs["group"] == group], margin))
    return [line for lines in questions.values() for line in lines]


def least_compute_verdict(where: str, rows: pd.DataFrame, pairs: pd.DataFrame,
                          margin: float) -> str:
    """(a) The cheapest combination decided better than or equivalent to random without pruning,
    paired by sampler seed; the cheaper ones still undecided are named."""
    scored = rows[rows["regret_pp_mean"].notna()]
    if scored.empty:
        return (f"{where}, no study has a regret (the notes say why): no combination can be "
                "compared.")
    baseline = _baseline(rows)
    if baseline is None or pd.isna(baseline["regret_pp_mean"]):
        chosen = scored.sort_values(["compute_seconds_mean", "regret_pp_mean"],
                                    kind="stable").iloc[0]
        return (f"{where}, no {BASELINE_NAME} run with a regret to compare with; "
                f"{chosen['combination']} used the least compute "
                f"({seconds(chosen['compute_seconds_mean'])} of training per seed, regret "
                f"{_regret(chosen)}), over {_seed_count(rows)}.")
    family = _family(pairs, "baseline")
    matched = family[family["decision"].isin(MATCHED)]
    costs = rows.set_index("combination")["compute_seconds_mean"]
    candidates = [BASELINE_NAME, *matched.index]
    chosen_name = min(candidates, key=lambda name: (costs[name], name != BASELINE_NAME))
    chosen = rows.set_index("combination").loc[chosen_name]
    cheaper = family[(family["decision"] == UNDECIDED)
                     & (family.index.map(costs) < costs[chosen_name])]
    worse = family[family["decision"] == decisions.WORSE]
    of = f"(paired by sampler seed, margin {within(margin)}, Holm over {len(family)})"
    if chosen_name == BASELINE_NAME:
        head = (f"{where}, no combination is shown to match {BASELINE_NAME} with less compute "
                f"{of}: it used {seconds(chosen['compute_seconds_mean'])} of training per seed, "
                f"regret {_regret(chosen)}")
    else:
        head = (f"{where}, {chosen_name} matched {BASELINE_NAME} with the least compute {of}: "
                f"{_decision(family.loc[chosen_name], margin)}; "
                f"{_times(baseline['compute_seconds_mean'], chosen['compute_seconds_mean'])} "
                f"compute ({seconds(chosen['compute_seconds_mean'])} vs "
                f"{seconds(baseline['compute_seconds_mean'])} of training per seed; regret "
                f"{_regret(chosen)} vs {_regret(baseline)})")
    after = ""
    if len(cheaper):
        after += (f" {UNDECIDED.capitalize()} for the cheaper "
                  f"{_listed([_named(r) for _, r in cheaper.iterrows()])}.")
    if len(worse):
        after += (f" Worse than {BASELINE_NAME}: "
                  f"{_listed([_named(r) for _, r in worse.iterrows()])}.")
    return f"{head}, over {_seed_count(rows)}.{after}"


def pruner_verdict(where: str, rows: pd.DataFrame, pruner: str, pairs: pd.DataFrame,
                   margin: float) -> str:
    """(b) What a pruner saves against no pruning with the same samplers, and whether it costs
    regret: paired by sampler seed, decided per sampler (Holm over the pruner's samplers)."""
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
    family = _family(pairs, f"pruner {pruner}").set_index("sampler")
    costs = "; ".join(f"{SAMPLER_NAMES.get(s, s)} {_decision(family.loc[s], margin)}"
                      for s in samplers if s in family.index)
    both = pd.concat([pruned.loc[samplers], unpruned.loc[samplers]])
    return (f"{where}, {name} used {overall} compute than no pruning with the same samplers "
            f"({ratios}); its regret against no pruning with the same sampler (paired by "
            f"sampler seed, margin {within(margin)}, Holm over {len(family)}): {costs}; {own}, "
            f"over {_seed_count(both)}.")


def sampler_verdict(where: str, rows: pd.DataFrame, pairs: pd.DataFrame, runs: pd.DataFrame,
                    margin: float) -> str:
    """(c) Which samplers, without pruning, picked better or worse configs than random: each
    one's paired decision against random without pruning."""
    family = _family(pairs, "baseline")
    unpruned = family[family["pruner"] == "none"] if len(family) else family
    if unpruned.empty:
        return (f"{where}, no sampler without pruning can be compared with {BASELINE_NAME}: "
                "no sampler comparison.")
    trials = runs.loc[runs["pruner"] == "none", "trials"]
    after = (f"{trials.min()}" if trials.min() == trials.max()
             else f"{trials.min()} to {trials.max()}")
    decided = "; ".join(f"{SAMPLER_NAMES.get(r['sampler'], r['sampler'])} "
                        f"{_decision(r, margin)}" for _, r in unpruned.iterrows())
    regrets = rows[rows["pruner"] == "none"]
    return (f"{where}, without pruning, after {after} trials, against random (regret "
            f"{_regret(_baseline(rows))}; paired by sampler seed, margin {within(margin)}, Holm "
            f"over {len(family)}): {decided}, over {_seed_count(regrets)}.")


def _family(pairs: pd.DataFrame, family: str) -> pd.DataFrame:
    """One family's paired decisions, by combination."""
    if pairs.empty:
        return pd.DataFrame(columns=[*pairs.columns]).set_index("combination", drop=False)
    return pairs[pairs["family"] == family].set_index("combination", drop=False).rename_axis(None)


def _decision(pair: pd.Series, margin: float) -> str:
    """"equivalent within +-0.30 pp, +0.02 pp (95% CI -0.10 to +0.14)": a paired decision in
    the suite's words, then its difference (_difference)."""
    if pair["pairs"] < decisions.MIN_SEEDS:
        return f"{UNDECIDED} ({_difference(pair)})"
    if pair["decision"] == decisions.EQUIVALENT:
        return f"equivalent within {within(margin)}, {_difference(pair)}"
    if pair["decision"] == decisions.BETTER:
        return f"better (lower regret), {_difference(pair)}"
    return f"{pair['decision']}, {_difference(pair)}"


def _difference(pair: pd.Series) -> str:
    """"+0.02 pp (95% CI -0.10 to +0.14)": the mean regret difference over paired sampler seeds
    (below 0: lower regret) and its interval, with the seeds it would take when undecided."""
    if pair["pairs"] < decisions.MIN_SEEDS:
        return f"fewer than {decisions.MIN_SEEDS} sampler seeds with a regret pair"
    more = (f"; about {counted(pair['more_seeds'], 'more sampler seed', spec='.0f')} would "
            "decide" if pair["decision"] == UNDECIDED else "")
    return (f"{_signed(pair['regret_difference_pp'])} pp ({CONFIDENCE:.0%} CI "
            f"{_signed(pair['ci_low_pp'])} to {_signed(pair['ci_high_pp'])}{more})")


def _signed(value: float) -> str:
    """"+0.12", and "+0.00" for a value that rounds to zero from below (not "-0.00")."""
    return f"{round(float(value), 2) + 0.0:+.2f}"


def _named(pair: pd.Series) -> str:
    return f"{pair['combination']} {_difference(pair)}"


def _listed(items: list[str]) -> str:
    """"A", "A and B", "A, B and C"."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _where(group: str, space: str, budget: str | None) -> str:
    """"On the faq-tutorial space (10 epochs, 1 evaluation per epoch)": a verdict's group, with
    the budget its trials trained to, so that groups at two budgets read apart."""
    named = [] if group == f"compare-{space}" else [f"group {group}"]
    told = ", ".join([*([budget] if isinstance(budget, str) else []), *named])
    return f"On the {space} space" + (f" ({told})" if told else "")


def _baseline(rows: pd.DataFrame) -> pd.Series | None:
    found = rows[(rows["sampler"] == BASELINE[0]) & (rows["pruner"] == BASELINE[1])]
    return found.set_index("combination", drop=False).iloc[0] if len(found) else None


def _times(other: float, this: float) -> str:
    """This compute against another's: "3.1x less" or "1.2x more"."""
    if not this > 0 or not other > 0:
        return "n/a"
    ratio = other / this
    return f"{ratio:.1f}x less" if ratio >= 1 else f"{1 / ratio:.1f}x more"


def _regret(row: pd.Series | None) -> str:
    """"0.06 pp (95% CI -0.49 to 0.61)", the mean regret and its interval."""
    if row is None or pd.isna(row["regret_pp_mean"]):
        return "n/a (no regret)"
    mean, low, high = row["regret_pp_mean"], row["regret_pp_ci_low"], row["regret_pp_ci_high"]
    if pd.isna(low):
        return f"{mean:.2f} pp (one seed: no interval)"
    return f"{mean:.2f} pp ({CONFIDENCE:.0%} CI {low:.2f} to {high:.2f})"


def _seed_count(rows: pd.DataFrame) -> str:
    """"2 sampler seeds", or "2 sampler seeds (1-2 with a regret)" when some studies have none
    (compute is over all of them, regret over those)."""
    low, high = int(rows["seeds"].min()), int(rows["seeds"].max())
    # seeds count studies, so at least 1: a range's noun is plural
    text = counted(high, "sampler seed") if low == high else f"{low}-{high} sampler seeds"
    if "scored_studies" not in rows or (rows["scored_studies"] == rows["seeds"]).all():
        return text
    low, high = int(rows["scored_studies"].min()), int(rows["scored_studies"].max())
    return text + f" ({low if low == high else f'{low}-{high}'} with a regret)"
