"""bench/benchmark/regret.py, bench/report/benchmark.py and benchmark_plots.py: the benchmark
tables equal values computed by hand from tests/benchmark_studies.py (2 samplers x 2 pruners x 2
seeds x 3 trials, 5 s per evaluation, 20 s per full curve; per-seed values in the table; each
pick scored on the reserved seed 3 against the baseline A (the highest mean over seeds 0-2),
also on seed 3), and the report shows them in one part."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from benchmark_studies import (BASELINE_RESERVED, GROUP, SEED_VALUES, complete, study_name,
                               write_compare_group)
from click.testing import CliRunner
from report_studies import write_study

from bench.benchmark import regret
from bench.cli import cli
from bench.evidence import decisions
from bench.report import benchmark, tables
from bench.report import benchmark_plots as benchmark_plots_module
from bench.report.benchmark_plots import benchmark_plots
from bench.report.load import load_studies
from bench.report.plots import learning_curves
from bench.store.studies import StudySource


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    write_compare_group(root)
    write_study(root, "alpha")
    return root


@pytest.fixture(scope="module")
def loaded(results):
    return {s.name: s for s in load_studies(StudySource(results))}


@pytest.fixture(scope="module")
def bench(loaded):
    ordinary, compared = benchmark.split_compare(list(loaded.values()))
    assert [s.name for s in ordinary] == ["alpha"] and len(compared) == 8
    return benchmark.summarize(compared)


# Regret per study (pp), by hand: the baseline A's seed 3 (99.10%) minus the picked config's seed 3:
# A 99.10 -> 0, B 98.91 -> 0.19, C 98.86 -> 0.24, whatever seeds the study saw.
REGRETS = {
    "TPE+Hyperband": (0.0, 0.19),  # A; B (picked on its lucky seed 1)
    "TPE without pruning": (0.0, 0.0),  # A; A
    "random+Hyperband": (0.19, 0.24),  # B; C
    "random without pruning": (0.24, 0.0),  # C; A (trained)
}
T_TWO_SEEDS = stats.t.ppf(0.975, 1)  # Student's t quantile, 95%, two sampler seeds


def test_regret_table_matches_values_computed_by_hand(bench):
    table = bench.regret.set_index("combination")
    assert list(table.index) == ["TPE+Hyperband", "TPE without pruning", "random+Hyperband",
                                 "random without pruning"]
    for name, (first, second) in REGRETS.items():
        # the sd is at least one validation image of 5,000 (0.02 pp): no zero-width interval
        sd = max(abs(first - second) / 2 ** 0.5, 0.02)
        mean, half = (first + second) / 2, T_TWO_SEEDS * sd / 2 ** 0.5
        assert table.loc[name, "regret_pp_mean"] == pytest.approx(mean)
        assert table.loc[name, "regret_pp_std"] == pytest.approx(abs(first - second) / 2 ** 0.5)
        assert table.loc[name, "regret_pp_ci_low"] == pytest.approx(mean - half)
        assert table.loc[name, "regret_pp_ci_high"] == pytest.approx(mean + half)
    assert list(table["seeds"]) == list(table["scored_studies"]) == [2, 2, 2, 2]
    assert set(table["reserved_seeds"]) == {"3"}
    assert set(table["baseline_reserved_accuracy"]) == {BASELINE_RESERVED}
    # TPE+Hyperband's seed 1 found 99.14% on B's lucky seed but scores B's seed 3: 0.19 pp
    assert table.loc["TPE+Hyperband", "regret_pp_mean"] == pytest.approx(0.095)
    assert list(table["best_validation_accuracy_mean"]) == pytest.approx(
        [0.9917, 0.9918, 0.9902, 0.9905])
    a, b, c = 99.14, 99.06, 98.89  # the configs' means over all their seeds, for context
    assert list(table["picked_config_accuracy_mean"]) == pytest.approx(
        [(a + b) / 200, a / 100, (b + c) / 200, (c + a) / 200])
    assert list(table["picked_config_reserved_accuracy_mean"]) == pytest.approx(
        [BASELINE_RESERVED - sum(REGRETS[name]) / 200 for name in table.index])
    assert list(table["table_best_accuracy"]) == pytest.approx([a / 100] * 4)
    assert set(table["table_best_seeds"]) == {4}
    # compute (s) per seed: complete 20, pruned after k evaluations 5k, invalid 0
    used = {"TPE+Hyperband": (20 + 5 + 5, 5 + 20 + 10), "TPE without pruning": (60, 40),
            "random+Hyperband": (20 + 5 + 20, 5 + 20 + 10), "random without pruning": (40, 60)}
    # without pruning every pruned trial counts its full 20 s (the trained one extrapolated: 10 s
    # for 2 of 4 evaluations -> 20 s)
    unpruned = {"TPE+Hyperband": (60, 60), "TPE without pruning": (60, 40),
                "random+Hyperband": (60, 60), "random without pruning": (40, 60)}
    for name in used:
        used_mean, unpruned_mean = sum(used[name]) / 2, sum(unpruned[name]) / 2
        assert table.loc[name, "compute_seconds_mean"] == used_mean
        assert table.loc[name, "compute_without_pruning_seconds_mean"] == unpruned_mean
        assert table.loc[name, "saved_by_pruning_seconds_mean"] == unpruned_mean - used_mean
        assert table.loc[name, "saved_by_pruning_x"] == pytest.approx(unpruned_mean / used_mean)
        assert table.loc[name, "less_compute_than_baseline_x"] == pytest.approx(50 / used_mean)
    assert list(table["full_cost_estimated_trials"]) == [1, 0, 0, 0]
    # replayed / trials with a curve: one trained trial in TPE+Hyperband and in random none
    assert list(table["replayed_trials_fraction"]) == pytest.approx([5 / 6, 1.0, 1.0, 4 / 5])


def test_the_fixture_values_are_the_seed_means_the_regret_is_computed_from():
    assert sum(SEED_VALUES["A"]) / 4 == pytest.approx(0.9914)
    assert sum(SEED_VALUES["B"]) / 4 == pytest.approx(0.9906)
    assert sum(SEED_VALUES["C"]) / 4 == pytest.approx(0.9889)
    assert sum(SEED_VALUES["A"][:3]) / 3 > max(sum(v[:3]) / 3 for k, v in SEED_VALUES.items()
                                               if k != "A")  # A is the baseline


def test_runs_hold_one_row_per_seed_with_its_regret_and_compute(bench):
    run = bench.runs.set_index("study").loc[study_name("tpe", "hyperband", 1)]
    assert (run["seed"], run["trials"], run["best_validation_accuracy"]) == (1, 3, 0.9914)
    # it picked config B on a lucky seed (99.14%, seed 1); B's value is 99.06%, on the reserved
    # seed 3 98.91%, 0.19 pp below the baseline's 99.10% there
    assert (run["picked_config_accuracy"], run["picked_config_seeds"]) == (pytest.approx(0.9906), 4)
    assert run["picked_config_reserved_accuracy"] == pytest.approx(0.9891)
    assert run["regret_pp"] == pytest.approx(0.19)
    assert (run["compute_seconds"], run["compute_without_pruning_seconds"]) == (35, 60)
    assert (run["replayed_trials"], run["trials_with_curve"]) == (2, 3)


def test_best_so_far_over_seeds_against_trials_and_seconds(bench):
    by_trials = bench.by_trials[bench.by_trials["combination"] == "TPE+Hyperband"]
    # seed 0: 99.20 from trial 1; seed 1: first trial pruned, then 99.14
    assert list(by_trials["trials_finished"]) == [1, 2, 3]
    assert list(by_trials["seeds"]) == [1, 2, 2]
    assert list(by_trials["best_validation_accuracy_mean"]) == pytest.approx([0.9920, 0.9917, 0.9917])
    assert list(by_trials["best_validation_accuracy_min"]) == [0.9920, 0.9914, 0.9914]
    assert list(by_trials["best_validation_accuracy_max"]) == [0.9920, 0.9920, 0.9920]
    by_seconds = bench.by_seconds[bench.by_seconds["combination"] == "TPE+Hyperband"]
    # seed 0 at 20, 25, 30 s; seed 1 at 5 (no completed trial yet), 25, 35 s, kept after its end
    assert list(by_seconds["cumulative_training_seconds"]) == [20, 25, 30, 35]
    assert list(by_seconds["seeds"]) == [1, 2, 2, 2]
    assert list(by_seconds["best_validation_accuracy_mean"]) == pytest.approx(
        [0.9920, 0.9917, 0.9917, 0.9917])
    random = bench.by_seconds[bench.by_seconds["combination"] == "random without pruning"]
    # seed 0: 98.50 at 20 s, 99.00 at 40 s (then an invalid trial at 40 s); seed 1: 99.10 at 20 s
    assert list(random["cumulative_training_seconds"]) == [20, 40, 60]
    assert list(random["best_validation_accuracy_mean"]) == pytest.approx(
        [(0.9850 + 0.9910) / 2, (0.9900 + 0.9910) / 2, (0.9900 + 0.9910) / 2])


def test_paired_rows_are_the_mean_of_per_seed_differences_with_a_paired_t_interval(bench):
    pairs = bench.pairs.set_index(["family", "combination"])
    assert list(pairs.index) == [("baseline", "TPE+Hyperband"), ("baseline", "TPE without pruning"),
                                 ("baseline", "random+Hyperband"),
                                 ("pruner hyperband", "TPE+Hyperband"),
                                 ("pruner hyperband", "random+Hyperband")]
    references = {"baseline": lambda name: "random without pruning",
                  "pruner hyperband": lambda name: name.replace("+Hyperband", " without pruning")}
    for (family, name), row in pairs.iterrows():
        reference = references[family](name)
        assert row["compared_with"] == reference
        differences = np.subtract(REGRETS[name], REGRETS[reference])  # seed k with seed k
        half = T_TWO_SEEDS * max(differences.std(ddof=1), 0.02) / 2 ** 0.5
        assert row["pairs"] == 2
        assert row["regret_difference_pp"] == pytest.approx(differences.mean())
        assert (row["ci_low_pp"], row["ci_high_pp"]) == pytest.approx(
            (differences.mean() - half, differences.mean() + half))
        assert row["decision"] == "undecided" and row["more_seeds"] >= 1
        assert row["margin_pp"] == pytest.approx(0.3)


def test_a_paired_interval_is_narrower_than_an_unpaired_one_where_seeds_share_their_luck():
    # sampler seed k is hard for both combinations alike: regrets 0.02-0.90 pp, TPE's always
    # 0.02-0.08 pp below random's
    random = [0.60, 0.10, 0.90, 0.20]
    tpe = [0.56, 0.02, 0.88, 0.12]
    runs = pd.DataFrame([{"group": GROUP, "sampler": sampler, "pruner": "none", "seed": k,
                          "regret_pp": value}
                         for sampler, values in (("random", random), ("tpe", tpe))
                         for k, value in enumerate(values)])
    row = regret.paired_table(runs, margin=0.003).iloc[0]
    differences = np.subtract(tpe, random)
    half = stats.t.ppf(0.975, 3) * differences.std(ddof=1) / 2
    assert row["regret_difference_pp"] == pytest.approx(differences.mean())
    assert (row["ci_low_pp"], row["ci_high_pp"]) == pytest.approx(
        (differences.mean() - half, differences.mean() + half))
    assert row["decision"] == "equivalent"  # the paired interval lies within +-0.3 pp
    # The same numbers unpaired (Welch) spread over the seeds' difficulty: not decided
    unpaired = decisions.unpaired(-np.array(tpe) / 100, -np.array(random) / 100, 0.003,
                                  regret.RESOLUTION, looks=regret.ONE_LOOK)
    assert unpaired.ci_high - unpaired.ci_low > 10 * (row["ci_high_pp"] - row["ci_low_pp"]) / 100
    assert decisions.decide_family([unpaired], 0.003, regret.ONE_LOOK)[0]["decision"] == "undecided"
    # a seed missing on one side is left out of the pairs, not compared unpaired
    row = regret.paired_table(runs.iloc[:-1], margin=0.003).iloc[0]
    assert row["pairs"] == 3
    assert row["regret_difference_pp"] == pytest.approx(differences[:3].mean())


def test_verdicts_on_the_group_say_the_paired_decisions_with_their_numbers(bench):
    least, pruner, sampler = bench.verdicts
    assert least == (
        "On the faq space (1 epoch, 4 evaluations per epoch), no combination is shown to match "
        "random without pruning with less compute (paired by sampler seed, margin +-0.30 pp, Holm "
        "over 3): it used 50 s of training per seed, regret 0.12 pp (95% CI -1.40 to 1.64), over "
        "2 sampler seeds. Undecided for the cheaper TPE+Hyperband -0.02 pp (95% CI -2.76 to "
        "+2.71; about 4 more sampler seeds would decide) and random+Hyperband +0.10 pp (95% CI "
        "-1.75 to +1.94; about 3 more sampler seeds would decide).")
    # (50 + 50) / (32.5 + 40) = 1.38x; TPE 50 / 32.5, random 50 / 40; own trials unpruned
    # (60 + 60) / (32.5 + 40) = 1.66x, saved (27.5 + 20) / 2
    assert pruner.startswith(
        "On the faq space (1 epoch, 4 evaluations per epoch), Hyperband used 1.4x less compute "
        "than no pruning with the same samplers (TPE 1.5x less, random 1.2x less); its regret "
        "against no pruning with the same sampler (paired by sampler seed, margin +-0.30 pp, Holm "
        "over 2): TPE undecided, +0.10 pp (95% CI -1.11 to +1.30; about ")
    assert pruner.endswith("its own trials would have cost 1.7x as much unpruned (23.8 s saved "
                           "per seed), over 2 sampler seeds.")
    assert sampler.startswith(
        "On the faq space (1 epoch, 4 evaluations per epoch), without pruning, after 3 trials, "
        "against random (regret 0.12 pp (95% CI -1.40 to 1.64); paired by sampler seed, margin "
        "+-0.30 pp, Holm over 3): TPE undecided, -0.12 pp (95% CI -1.64 to +1.40; about ")
    # each verdict's numbers are the tables'
    row = bench.pairs.set_index(["family", "combination"]).loc[("baseline", "TPE without pruning")]
    assert f"{row['regret_difference_pp']:+.2f} pp (95% CI {row['ci_low_pp']:+.2f}" in sampler


def _rows(*rows, seeds: int = 10) -> pd.DataFrame:
    """A hand-made regret table: (sampler, pruner, regret pp, compute s, without pruning s)."""
    return pd.DataFrame([{
        "group": GROUP, "space": "faq", "sampler": s, "pruner": p, "seeds": seeds,
        "scored_studies": seeds, "combination": regret.combination_name(s, p),
        "regret_pp_mean": mean, "regret_pp_ci_low": mean - 0.05, "regret_pp_ci_high": mean + 0.05,
        "compute_seconds_mean": used, "compute_without_pruning_seconds_mean": without,
        "saved_by_pruning_seconds_mean": without - used} for s, p, mean, used, without in rows])


def _pairs(*rows, family: str = "baseline", seeds: int = 10) -> pd.DataFrame:
    """Hand-made paired decisions: (sampler, pruner, difference pp, decision)."""
    return pd.DataFrame([{
        "group": GROUP, "family": family, "combination": regret.combination_name(s, p),
        "sampler": s, "pruner": p,
        "compared_with": regret.combination_name(*(("random", "none") if family == "baseline"
                                               else (s, "none"))),
        "pairs": seeds, "regret_difference_pp": d, "ci_low_pp": d - 0.1, "ci_high_pp": d + 0.1,
        "decision": decision, "more_seeds": 7 if decision == "undecided" else 0}
        for s, p, d, decision in rows])


ROWS = _rows(("random", "none", 0.20, 100.0, 100.0), ("tpe", "none", 0.18, 100.0, 100.0),
             ("gp", "none", 0.60, 200.0, 200.0), ("tpe", "hyperband", 0.21, 40.0, 100.0),
             ("random", "hyperband", 0.30, 30.0, 100.0))
PAIRS = pd.concat([
    _pairs(("tpe", "none", -0.02, "equivalent"), ("gp", "none", 0.40, "worse"),
           ("tpe", "hyperband", 0.01, "equivalent"), ("random", "hyperband", 0.10, "undecided")),
    _pairs(("tpe", "hyperband", 0.03, "equivalent"), ("random", "hyperband", 0.10, "undecided"),
           family="pruner hyperband")], ignore_index=True)


def test_the_cheapest_combination_decided_no_worse_than_the_baseline_is_named():
    least = benchmark.least_compute_verdict("On the faq space", ROWS, PAIRS, 0.003)
    assert least == (
        "On the faq space, TPE+Hyperband matched random without pruning with the least compute "
        "(paired by sampler seed, margin +-0.30 pp, Holm over 4): equivalent within +-0.30 pp, "
        "+0.01 pp (95% CI -0.09 to +0.11); 2.5x less compute (40 s vs 100 s of training per "
        "seed; regret 0.21 pp (95% CI 0.16 to 0.26) vs 0.20 pp (95% CI 0.15 to 0.25)), over 10 "
        "sampler seeds. Undecided for the cheaper random+Hyperband +0.10 pp (95% CI +0.00 to "
        "+0.20; about 7 more sampler seeds would decide). Worse than random without pruning: GP "
        "without pruning +0.40 pp (95% CI +0.30 to +0.50).")
    # nothing decided no worse: the baseline stands, and says so
    undecided = PAIRS.assign(decision="undecided")
    assert benchmark.least_compute_verdict("On the faq space", ROWS, undecided, 0.003).startswith(
        "On the faq space, no combination is shown to match random without pruning with less "
        "compute (paired by sampler seed, margin +-0.30 pp, Holm over 4): it used 100 s")
    alone = benchmark.least_compute_verdict("On the faq space", ROWS.iloc[1:], PAIRS.iloc[:0],
                                            0.003)
    assert alone == ("On the faq space, no random without pruning run with a regret to compare "
                     "with; random+Hyperband used the least compute (30 s of training per seed, "
                     "regret 0.30 pp (95% CI 0.25 to 0.35)), over 10 sampler seeds.")


def test_pruner_and_sampler_verdicts_word_each_paired_decision():
    pruner = benchmark.pruner_verdict("On the faq space", ROWS, "hyperband", PAIRS, 0.003)
    assert ("(paired by sampler seed, margin +-0.30 pp, Holm over 2): TPE equivalent within "
            "+-0.30 pp, +0.03 pp (95% CI -0.07 to +0.13); random undecided, +0.10 pp (95% CI "
            "+0.00 to +0.20; about 7 more sampler seeds would decide);") in pruner
    runs = ROWS.assign(trials=30)
    sampler = benchmark.sampler_verdict("On the faq space", ROWS, PAIRS, runs, 0.003)
    assert sampler == (
        "On the faq space, without pruning, after 30 trials, against random (regret 0.20 pp (95% "
        "CI 0.15 to 0.25); paired by sampler seed, margin +-0.30 pp, Holm over 4): TPE equivalent "
        "within +-0.30 pp, -0.02 pp (95% CI -0.12 to +0.08); GP worse, +0.40 pp (95% CI +0.30 to "
        "+0.50), over 10 sampler seeds.")
    better = PAIRS.assign(decision=PAIRS["decision"].where(PAIRS["sampler"] != "gp", "better"))
    assert "GP better (lower regret), +0.40 pp" in benchmark.sampler_verdict(
        "On the faq space", ROWS, better, runs, 0.003)
    median = benchmark.pruner_verdict("On the faq space", ROWS.iloc[1:].assign(
        pruner=["median", "none", "hyperband", "hyperband"]), "median", PAIRS, 0.003)
    assert median.startswith("On the faq space, median: no run without pruning with the same "
                             "sampler;")


def test_the_margin_passed_to_report_reaches_the_benchmark_verdicts(tmp_path):
    # four sampler seeds where TPE and random both pick A: paired differences 0, sd floored at
    # one validation image (0.02 pp): equivalent within 0.3 pp, not within 0.01 pp
    same = [[complete(0.9920, "A")] for _ in range(4)]
    write_compare_group(tmp_path, runs={("random", "none"): same, ("tpe", "none"): same})
    decided = {}
    for margin in ("0.3", "0.01"):
        out = tmp_path / f"report-{margin}"
        result = CliRunner().invoke(cli, ["report", str(tmp_path), "--out", str(out),
                                          "--margin", margin])
        assert result.exit_code == 0, result.output
        pairs = pd.read_csv(out / "benchmark_pairs.csv")
        assert list(pairs["margin_pp"]) == [float(margin)]
        decided[margin] = pairs["decision"].iloc[0]
        summary = (out / "summary.md").read_text()
        assert f"margin +-{float(margin):.2f} pp" in summary
    assert decided == {"0.3": "equivalent", "0.01": "undecided"}


def test_regret_intervals_count_only_studies_with_a_regret(bench):
    runs = bench.runs.copy()
    unscored = runs["study"] == study_name("tpe", "none", 1)
    runs.loc[unscored, "regret_pp"] = np.nan
    table = regret.regret_table(runs)
    row = table.set_index("combination").loc["TPE without pruning"]
    assert (row["seeds"], row["scored_studies"]) == (2, 1)
    assert row["regret_pp_mean"] == pytest.approx(REGRETS["TPE without pruning"][0])
    assert math.isnan(row["regret_pp_ci_low"]) and math.isnan(row["regret_pp_ci_high"])
    pair = regret.paired_table(runs, 0.003).set_index("combination").loc["TPE without pruning"]
    assert (pair["pairs"], pair["decision"]) == (1, "undecided")  # one pair: no test


def test_every_study_gets_a_regret_even_one_that_saw_every_replay_seed_of_its_pick(tmp_path):
    # seed 0 queried C three times and drew its replay seeds 0, 1 and 2; seed 1 drew seed 0 only
    runs = {("random", "none"): [[complete(0.9900, "C"), complete(0.9890, "C"),
                                  complete(0.9880, "C")],
                                 [complete(0.9850, "D"), complete(0.9900, "C")]]}
    write_compare_group(tmp_path, runs=runs)
    bench = benchmark.summarize(load_studies(StudySource(tmp_path)))
    assert list(bench.runs["regret_pp"]) == pytest.approx([0.24, 0.24])
    row = bench.regret.iloc[0]
    assert (row["seeds"], row["scored_studies"]) == (2, 2)
    assert not any("no regret" in note for note in bench.notes)


def test_a_report_of_a_group_written_without_the_table_says_so(tmp_path):
    write_compare_group(tmp_path, with_table=False)
    bench = benchmark.summarize(load_studies(StudySource(tmp_path)))
    # no seed of any pick is known: no regret, and no verdict pretends one
    assert bench.regret["regret_pp_mean"].isna().all()
    assert set(bench.regret["scored_studies"]) == {0}
    assert "have no seed mean of their picked config" in bench.notes[0]
    assert bench.verdicts[0] == ("On the faq space (1 epoch, 4 evaluations per epoch), no study "
                                 "has a regret (the notes say why): no combination can be "
                                 "compared.")
    assert "TPE undecided (fewer than 2 sampler seeds with a regret pair)" in bench.verdicts[1]


@pytest.mark.parametrize("vintage", ["heldout", "first"])
def test_studies_written_before_reserved_seeds_still_render_scored_the_old_way(tmp_path, vintage):
    write_compare_group(tmp_path, vintage=vintage)
    bench = benchmark.summarize(load_studies(StudySource(tmp_path)))
    assert not bench.runs["reserved_scoring"].any()
    note = next(n for n in bench.notes if "before reserved seeds" in n)
    assert note.startswith("group compare-faq: 8 studies were written by a compare before "
                           "reserved seeds, so their regret is the old one")
    table = bench.regret.set_index("combination")
    if vintage == "first":  # no held-out means at all: no regret, still a page
        assert bench.runs["regret_pp"].isna().all()
    else:  # the old score: the pick's unseen seeds against the best all-seed mean (99.14%)
        run = bench.runs.set_index("study").loc[study_name("tpe", "hyperband", 1)]
        assert run["regret_pp"] == pytest.approx(99.14 - (99.15 + 99.04 + 98.91) / 3)
    assert table.loc["TPE without pruning", "picked_config_accuracy_mean"] == pytest.approx(0.9914)
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["report", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "before reserved seeds" in (out / "summary.md").read_text()


def test_replayed_trials_are_marked_in_frames_tables_and_curves(loaded):
    study = loaded[study_name("tpe", "hyperband", 1)]
    trials = study.trials.set_index("trial")
    assert list(trials["replayed"]) == [True, True, False]
    assert list(trials["training_seconds"]) == [5.0, 20.0, 10.0]
    assert trials.loc[0, "replayed_from"] == "compare-faq-grid#0"
    assert tables.pruning_table([study])["replayed"].iloc[0] == 2
    figure = learning_curves(study).figure
    styles = {trace.name: trace.line.dash for trace in figure.data}
    assert styles == {"pruned, replayed": "longdash", "complete, replayed": "longdash",
                      "pruned": "dot"}
    assert "replayed from compare-faq-grid#0" in figure.data[0].hovertemplate


def test_regret_so_far_is_drawn_as_one_panel_per_pruner_with_a_line_and_band_per_sampler(bench):
    paired, trials, seconds, scatter = benchmark_plots(bench)  # no rank plot: lines tangled
    assert trials.title == (f"Benchmark {GROUP} (1 epoch, 4 evaluations per epoch): regret so "
                           "far vs trials finished")
    figure = trials.figure
    titles = [a.text for a in figure.layout.annotations if a.text in ("Hyperband", "no pruning")]
    assert titles == ["Hyperband", "no pruning"]  # one subplot per pruner, in the table's order
    assert figure.layout.yaxis2.matches == "y"  # a shared y axis
    assert figure.layout.yaxis.type == "log"  # pp below the best, not a 20-100% axis
    assert all(a.text not in (None, "new text") for a in figure.layout.annotations)
    assert figure.layout.legend.orientation == "h"  # below the plot: fits a phone
    lines = [t for t in figure.data if t.fill is None]
    bands = [t for t in figure.data if t.fill == "toself"]
    assert [(t.name, t.xaxis) for t in lines] == [("TPE", "x"), ("random", "x"),
                                                  ("TPE", "x2"), ("random", "x2")]
    assert [t.xaxis for t in bands] == ["x", "x", "x2", "x2"]
    assert [t.showlegend for t in lines] == [True, True, False, False]  # one entry per sampler
    # every seed's best so far passes the table's best 3-seed mean (99.14%): drawn at the floor
    assert set(lines[0].y) == {benchmark_plots_module.REGRET_FLOOR_PP}
    assert lines[0].line.color == lines[2].line.color != lines[1].line.color
    # against a best of 99.50%: TPE+Hyperband's mean 99.20, 99.17, 99.17 is 0.30, 0.33, 0.33 pp
    # below; its band runs from the best seed (99.20 throughout) to the worst (99.20, then 99.14)
    group_regret = bench.regret[bench.regret["group"] == GROUP]
    drawn = benchmark_plots_module.best_so_far(
        bench.by_trials[bench.by_trials["group"] == GROUP], "trials_finished", "trials finished",
        group_regret, 0.995, "t").figure
    line = [t for t in drawn.data if t.fill is None][0]
    band = [t for t in drawn.data if t.fill == "toself"][0]
    assert list(line.y) == pytest.approx([0.30, 0.33, 0.33])
    assert list(band.x) == [1, 2, 2, 3, 3, 3, 3, 2, 2, 1]
    assert list(band.y) == pytest.approx([0.30, 0.30, 0.36, 0.36, 0.36,
                                          0.30, 0.30, 0.30, 0.30, 0.30])
    assert seconds.figure.layout.xaxis.title.text == "cumulative training seconds"
    means = [t for t in scatter.figure.data if t.showlegend is not False]
    assert (means[0].name, means[0].x[0], means[0].y[0]) == ("TPE+Hyperband", 32.5,
                                                             pytest.approx(0.095))
    # the regret's error bar is the regret table's interval, not the std
    row = bench.regret.set_index("combination").loc["TPE+Hyperband"]
    assert means[0].error_y.array[0] == pytest.approx(row["regret_pp_ci_high"] - 0.095)
    assert means[0].error_y.arrayminus[0] == pytest.approx(0.095 - row["regret_pp_ci_low"])
    assert scatter.figure.layout.yaxis.title.text.startswith("regret on reserved seeds")


def test_the_answer_plot_draws_each_paired_difference_with_its_interval_and_the_margin(bench):
    plot = benchmark_plots(bench)[0]
    assert plot.title == (f"Benchmark {GROUP} (1 epoch, 4 evaluations per epoch): regret against "
                          "random without pruning, paired by "
                          "sampler seed")
    figure = plot.figure
    (trace,) = figure.data  # every pair is undecided at two sampler seeds: one trace
    assert trace.name == "undecided"
    # the table's first combination on top (plotly draws categories bottom up)
    assert list(trace.y) == ["random+Hyperband", "TPE without pruning", "TPE+Hyperband"]
    pairs = bench.pairs[bench.pairs["family"] == "baseline"].iloc[::-1]
    assert list(trace.x) == pytest.approx(list(pairs["regret_difference_pp"]))
    assert list(trace.error_x.array) == pytest.approx(
        list(pairs["ci_high_pp"] - pairs["regret_difference_pp"]))
    (band,) = figure.layout.shapes[:1]
    assert (band.x0, band.x1) == pytest.approx((-0.3, 0.3))  # the report's margin, shaded
    narrower = benchmark_plots(benchmark.Benchmark(**{**vars(bench), "margin": 0.001}))[0]
    assert narrower.figure.layout.shapes[0].x1 == pytest.approx(0.1)


def test_rank_over_trials_ranks_combinations_by_mean_best_so_far(bench):
    ranks = bench.ranks.set_index(["combination", "trials_finished"])["rank"]
    # after 1 trial, means: TPE+Hyperband 99.20, random+Hyperband 98.90, TPE none 98.85, random
    # none 98.80; after 3: TPE none 99.18, TPE+Hyperband 99.17, random none 99.05, random+HB 99.02
    assert [ranks[(name, 1)] for name in bench.regret["combination"]] == [1, 3, 2, 4]
    assert [ranks[(name, 3)] for name in bench.regret["combination"]] == [2, 1, 4, 3]


def test_report_writes_the_benchmark_part_and_still_the_ordinary_tables(results, tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["report", str(results), "--out", str(out)])
    assert result.exit_code == 0, result.output
    regret_csv = pd.read_csv(out / "regret.csv")
    assert regret_csv.loc[0, "combination"] == "TPE+Hyperband"
    assert regret_csv.loc[0, "regret_pp_mean"] == pytest.approx(0.095)
    assert regret_csv.loc[0, "table_best_seeds"] == 4
    for name in ("regret", "benchmark_pairs", "benchmark_runs", "best_so_far_by_trials",
                 "best_so_far_by_seconds",
                 "rank_by_trials", "accuracy", "size", "speed", "pruning", "faq"):
        assert (out / f"{name}.csv").is_file() and (out / f"{name}.md").is_file()
    assert "| 0.10 pp" in (out / "regret.md").read_text()
    assert set(pd.read_csv(out / "accuracy.csv")["studies"]) == {"alpha"}  # no compare study
    assert list(pd.read_csv(out / "pruning.csv")["study"]) == ["alpha"]
    summary = (out / "summary.md").read_text()
    assert "## Benchmark" in summary
    assert ("- On the faq space (1 epoch, 4 evaluations per epoch), no combination is shown"
            in summary)
    assert summary.startswith("# mnist-bench report\n\nBest config by the search's own value")
    page = (out / "index.html").read_text()
    assert page.count(">Benchmark</h2>") == 1 and ">Study alpha</h2>" in page
    assert ">Study compare-faq" not in page and "Studies compared" not in page


def test_report_of_compare_studies_alone(results, tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["report", str(results), "--study", GROUP, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "regret.csv").is_file() and not (out / "accuracy.csv").exists()
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# mnist-bench report\n\n\n## Benchmark\n\n- On the faq space")
