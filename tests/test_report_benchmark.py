"""bench/benchmark/regret.py, bench/report/benchmark.py and benchmark_plots.py: the benchmark
tables equal values computed by hand from tests/benchmark_studies.py (2 samplers x 2 pruners x 2
seeds x 3 trials, 5 s per evaluation, 20 s per full curve; per-seed values in the table, best
config A: mean 99.14% over 4 seeds; each pick scored on the seeds its study did not draw), and
the report shows them in one part."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from benchmark_studies import (GROUP, SEED_VALUES, complete, study_name,
                               write_compare_group)
from click.testing import CliRunner
from report_studies import write_study

from bench.benchmark import regret
from bench.cli import cli
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


# Held-out regret per study (pp), by hand: the best trial's config, the seeds the study's trials
# of it drew (seen), the mean over the others: 99.14 - that mean.
# A's seeds 99.20, 99.16, 99.10, 99.10; B's 99.15, 99.14, 99.04, 98.91; C's 99.00, 98.90, 98.80.
HELDOUT_REGRETS = {
    # seed 0 picked A on seed 0 -> 99.12; seed 1 picked B on its lucky seed 1 -> 99.0333
    "TPE+Hyperband": (99.14 - (99.16 + 99.10 + 99.10) / 3, 99.14 - (99.15 + 99.04 + 98.91) / 3),
    # A on seed 0 -> 99.12; A on seed 1 -> 99.1333
    "TPE without pruning": (99.14 - (99.16 + 99.10 + 99.10) / 3,
                            99.14 - (99.20 + 99.10 + 99.10) / 3),
    # B on seed 2 -> 99.0667; C on seed 0 -> 98.85
    "random+Hyperband": (99.14 - (99.15 + 99.14 + 98.91) / 3, 99.14 - (98.90 + 98.80) / 2),
    # C on seed 0 -> 98.85; A on seed 2 (trained) -> 99.1533: below zero, A's unseen seeds are high
    "random without pruning": (99.14 - (98.90 + 98.80) / 2, 99.14 - (99.20 + 99.16 + 99.10) / 3),
}
T_TWO_SEEDS = stats.t.ppf(0.975, 1)  # Student's t quantile, 95%, two sampler seeds


def test_regret_table_matches_values_computed_by_hand(bench):
    table = bench.regret.set_index("combination")
    assert list(table.index) == ["TPE+Hyperband", "TPE without pruning", "random+Hyperband",
                                 "random without pruning"]
    for name, (first, second) in HELDOUT_REGRETS.items():
        # the sd is at least one validation image of 5,000 (0.02 pp): no zero-width interval
        sd = max(abs(first - second) / 2 ** 0.5, 0.02)
        mean, half = (first + second) / 2, T_TWO_SEEDS * sd / 2 ** 0.5
        assert table.loc[name, "regret_pp_mean"] == pytest.approx(mean)
        assert table.loc[name, "regret_pp_std"] == pytest.approx(abs(first - second) / 2 ** 0.5)
        assert table.loc[name, "regret_pp_ci_low"] == pytest.approx(mean - half)
        assert table.loc[name, "regret_pp_ci_high"] == pytest.approx(mean + half)
    assert list(table["seeds"]) == list(table["heldout_studies"]) == [2, 2, 2, 2]
    # TPE+Hyperband's seed 1 found 99.14% on B's lucky seed but scores B's unseen seeds: 0.11 pp
    assert table.loc["TPE+Hyperband", "regret_pp_mean"] == pytest.approx(0.19 / 3)
    assert list(table["seeds_within_0.1pp_fraction"]) == [0.5, 1.0, 0.5, 0.5]
    assert list(table["best_validation_accuracy_mean"]) == pytest.approx(
        [0.9917, 0.9918, 0.9902, 0.9905])
    a, b, c = 99.14, 99.06, 98.90  # the configs' means over all their seeds, for context
    assert list(table["picked_config_accuracy_mean"]) == pytest.approx(
        [(a + b) / 200, a / 100, (b + c) / 200, (c + a) / 200])
    assert list(table["picked_config_heldout_accuracy_mean"]) == pytest.approx(
        [a / 100 - sum(HELDOUT_REGRETS[name]) / 200 for name in table.index])
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
    assert sum(SEED_VALUES["C"]) / 3 == pytest.approx(0.9890)


def test_runs_hold_one_row_per_seed_with_its_regret_and_compute(bench):
    run = bench.runs.set_index("study").loc[study_name("tpe", "hyperband", 1)]
    assert (run["seed"], run["trials"], run["best_validation_accuracy"]) == (1, 3, 0.9914)
    # it picked config B on a lucky seed (99.14%, seed 1); B's value is 99.06%, on the 3 seeds
    # the study did not draw 99.0333%
    assert (run["picked_config_accuracy"], run["picked_config_seeds"]) == (pytest.approx(0.9906), 4)
    assert (run["picked_config_heldout_accuracy"], run["picked_config_heldout_seeds"]) == (
        pytest.approx(0.990333, abs=1e-6), 3)
    assert run["regret_pp"] == pytest.approx(0.32 / 3)
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


def test_verdicts_name_the_right_combination_and_ratio(bench):
    least, pruner, sampler = bench.verdicts
    # regret intervals (pp): TPE+Hyperband -0.49 to 0.61, TPE none -0.17 to 0.19 (its two regrets
    # differ by under one validation image, so its sd is floored at 0.02 pp: at two sampler seeds
    # no interval can lie within 0.1 pp), random+Hyperband -1.19 to 1.56, random none -1.79 to 2.07
    assert least == ("On the faq space, undecided which combination reaches within 0.1 pp of the "
                     "best config in the table (99.14%, mean of 4 training seeds): no regret "
                     "interval lies wholly within it; TPE without pruning came closest on "
                     "average: 1.0x less than random without pruning (50 s vs 50 s of training "
                     "per seed; regret 0.01 pp (95% CI -0.17 to 0.19) vs 0.14 pp (95% CI -1.79 to "
                     "2.07)), over 2 sampler seeds.")
    # (50 + 50) / (32.5 + 40) = 1.38x; TPE 50 / 32.5, random 50 / 40; own trials unpruned
    # (60 + 60) / (32.5 + 40) = 1.66x, saved (27.5 + 20) / 2; every pair of intervals overlaps
    assert pruner == ("On the faq space, Hyperband used 1.4x less compute than no pruning with "
                      "the same samplers (TPE 1.5x less, random 1.2x less); whether it costs "
                      "accuracy (held-out regret with vs without it): TPE undecided (the intervals "
                      "overlap), 0.06 pp (95% CI -0.49 to 0.61) vs 0.01 pp (95% CI -0.17 to 0.19); "
                      "random undecided (the intervals overlap), 0.18 pp (95% CI -1.19 to 1.56) vs "
                      "0.14 pp (95% CI -1.79 to 2.07); its own trials would have cost 1.7x as much "
                      "unpruned (23.8 s saved per seed), over 2 sampler seeds.")
    assert sampler == ("On the faq space, without pruning, which sampler picks the best configs is "
                       "undecided: after 3 trials TPE has the lowest mean held-out regret, 0.01 pp "
                       "(95% CI -0.17 to 0.19), but its interval overlaps random 0.14 pp (95% CI "
                       "-1.79 to 2.07), over 2 sampler seeds.")
    # each verdict's numbers are the regret table's
    table = bench.regret.set_index("combination")
    for name in ("TPE without pruning", "random without pruning"):
        mean, low, high = table.loc[name, ["regret_pp_mean", "regret_pp_ci_low",
                                           "regret_pp_ci_high"]]
        assert f"{mean:.2f} pp (95% CI {low:.2f} to {high:.2f})" in least
        assert f"{mean:.2f} pp (95% CI {low:.2f} to {high:.2f})" in sampler


def _rows(*rows, seeds: int = 3) -> pd.DataFrame:
    """A hand-made regret table: (sampler, pruner, (regret pp, ci low, ci high), compute s,
    without pruning s)."""
    return pd.DataFrame([{
        "group": GROUP, "space": "faq", "sampler": s, "pruner": p, "seeds": seeds,
        "heldout_studies": seeds, "combination": regret.combination_name(s, p),
        "table_best_accuracy": 0.99, "regret_pp_mean": pp[0], "regret_pp_ci_low": pp[1],
        "regret_pp_ci_high": pp[2], "compute_seconds_mean": used,
        "compute_without_pruning_seconds_mean": without,
        "saved_by_pruning_seconds_mean": without - used} for s, p, pp, used, without in rows])


def test_verdict_when_nothing_reached_the_best_or_no_baseline_ran():
    rows = _rows(("random", "none", (0.50, 0.40, 0.60), 100.0, 100.0),
                 ("tpe", "median", (0.30, 0.20, 0.40), 400.0, 800.0),
                 ("qmc", "none", (0.30, 0.25, 0.35), 200.0, 200.0))
    line = benchmark.least_compute_verdict("On the faq space", rows)
    assert line.startswith("On the faq space, no combination reached within 0.1 pp of the best "
                           "config in the table (99.00%): every regret interval lies above it; "
                           "QMC without pruning came closest: 2.0x more than random without "
                           "pruning (200 s vs 100 s of training per seed; regret 0.30 pp (95% CI "
                           "0.25 to 0.35) vs 0.50 pp (95% CI 0.40 to 0.60))")
    alone = benchmark.least_compute_verdict("On the faq space", rows.iloc[1:])
    assert "no random without pruning run to compare with" in alone
    median = benchmark.pruner_verdict("On the faq space", rows, "median")
    assert median == ("On the faq space, median: no run without pruning with the same sampler; "
                      "its own trials would have cost 2.0x as much unpruned (400 s saved per "
                      "seed), over 3 sampler seeds.")
    straddles = _rows(("random", "none", (0.50, 0.40, 0.60), 100.0, 100.0),
                      ("tpe", "none", (0.05, -0.10, 0.20), 100.0, 100.0))
    assert benchmark.least_compute_verdict("On the faq space", straddles).startswith(
        "On the faq space, undecided which combination reaches within 0.1 pp of the best config "
        "in the table (99.00%): no regret interval lies wholly within it; TPE without pruning "
        "came closest on average:")


def test_verdicts_decide_only_where_the_intervals_are_apart():
    # TPE's interval lies below random's and GP's; Hyperband's above no pruning's with TPE
    rows = _rows(("random", "none", (0.30, 0.20, 0.40), 100.0, 100.0),
                 ("tpe", "none", (0.05, 0.02, 0.08), 100.0, 100.0),
                 ("gp", "none", (0.35, 0.10, 0.60), 100.0, 100.0),
                 ("tpe", "hyperband", (0.25, 0.15, 0.35), 40.0, 100.0),
                 ("random", "hyperband", (0.32, 0.10, 0.50), 40.0, 100.0))
    runs = rows.assign(trials=30)
    sampler = benchmark.sampler_verdict("On the faq space", rows, runs)
    assert sampler == ("On the faq space, without pruning, TPE picked the best configs: after 30 "
                       "trials its held-out regret was 0.05 pp (95% CI 0.02 to 0.08), below every "
                       "other interval (random 0.30 pp (95% CI 0.20 to 0.40), GP 0.35 pp (95% CI "
                       "0.10 to 0.60)), over 3 sampler seeds.")
    pruner = benchmark.pruner_verdict("On the faq space", rows, "hyperband")
    assert ("TPE costs accuracy, 0.25 pp (95% CI 0.15 to 0.35) vs 0.05 pp (95% CI 0.02 to 0.08); "
            "random undecided (the intervals overlap), 0.32 pp (95% CI 0.10 to 0.50) vs 0.30 pp "
            "(95% CI 0.20 to 0.40)") in pruner
    least = benchmark.least_compute_verdict("On the faq space", rows)
    assert least.startswith("On the faq space, TPE without pruning is the cheapest combination "
                            "shown to reach within 0.1 pp")
    assert least.endswith("Undecided for the cheaper random+Hyperband: their regret intervals "
                          "straddle 0.1 pp.")  # TPE+Hyperband is cheaper too, but shown above
    # GP's interval overlaps TPE's: no winner, and random, apart from TPE's, is named worse
    overlapping = rows.assign(regret_pp_ci_low=rows["regret_pp_ci_low"].where(
        rows["sampler"] != "gp", 0.07))
    sampler = benchmark.sampler_verdict("On the faq space", overlapping, runs)
    assert sampler.startswith("On the faq space, without pruning, which sampler picks the best "
                              "configs is undecided: after 30 trials TPE has the lowest mean "
                              "held-out regret, 0.05 pp (95% CI 0.02 to 0.08), but its interval "
                              "overlaps GP 0.35 pp (95% CI 0.07 to 0.60); random 0.30 pp")
    assert sampler.endswith("picked worse configs than TPE, over 3 sampler seeds.")


def test_decisions_are_taken_on_the_numbers_the_sentence_shows():
    # 0.0801 lies below 0.0849, but both print as 0.08: a sentence must not call intervals apart
    # that it prints as touching
    rows = _rows(("random", "none", (0.20, 0.0849, 0.30), 100.0, 100.0),
                 ("tpe", "none", (0.05, 0.00, 0.0801), 100.0, 100.0))
    line = benchmark.sampler_verdict("On the faq space", rows, rows.assign(trials=30))
    assert "is undecided" in line and "(95% CI 0.00 to 0.08)" in line
    assert "(95% CI 0.08 to 0.30)" in line
    # 0.1004 is above 0.1 pp but prints as 0.10: within, as the sentence shows it
    within = _rows(("tpe", "none", (0.05, 0.00, 0.1004), 100.0, 100.0))
    assert benchmark.least_compute_verdict("On the faq space", within).startswith(
        "On the faq space, TPE without pruning reached within 0.1 pp")  # its interval reads 0.10


def test_regret_intervals_count_only_studies_with_a_held_out_regret(bench):
    runs = bench.runs.copy()
    unscored = runs["study"] == study_name("tpe", "none", 1)
    runs.loc[unscored, ["picked_config_heldout_accuracy", "regret_pp"]] = np.nan
    table = regret.regret_table(runs)
    row = table.set_index("combination").loc["TPE without pruning"]
    assert (row["seeds"], row["heldout_studies"]) == (2, 1)
    assert row["regret_pp_mean"] == pytest.approx(HELDOUT_REGRETS["TPE without pruning"][0])
    assert math.isnan(row["regret_pp_ci_low"]) and math.isnan(row["regret_pp_ci_high"])
    assert row["seeds_within_0.1pp_fraction"] == 1.0  # of the one study with a regret
    line = benchmark.sampler_verdict("On the faq space", table, runs)
    assert line == ("On the faq space, without pruning, which sampler picks the best configs is "
                    "undecided: after 3 trials TPE has the lowest mean held-out regret, 0.02 pp "
                    "(one seed: no interval), but its interval overlaps random 0.14 pp (95% CI "
                    "-1.79 to 2.07), over 2 sampler seeds (1-2 with a held-out regret).")


def test_regret_falls_back_to_the_trial_value_when_the_table_had_none(bench):
    notes = []
    runs = regret._with_regret(bench.runs.assign(table_best_accuracy=None,
                                                 picked_config_accuracy=None), notes)
    assert set(runs["table_best_accuracy"]) == {0.9920}  # TPE found 99.20% itself
    assert list(runs["picked_config_accuracy"]) == list(runs["best_validation_accuracy"])
    assert "8 studies have no seed mean of their picked config" in notes[0]
    assert "no complete curve" in notes[1]
    notes = []
    runs = regret._with_regret(bench.runs.assign(table_best_accuracy=0.9910), notes)
    # random none seed 1 picked A, whose seeds it did not draw have mean 99.1533%
    assert runs["regret_pp"].min() == pytest.approx(99.10 - (99.20 + 99.16 + 99.10) / 3)
    # TPE+Hyperband seed 0, TPE none seeds 0 and 1, random none seed 1 picked A (99.14%)
    assert "4 studies picked a config whose value beats the table's best (99.10%)" in notes[0]


def test_a_report_of_a_group_written_without_the_table_says_so(tmp_path):
    write_compare_group(tmp_path, with_table=False)
    bench = benchmark.summarize(load_studies(StudySource(tmp_path)))
    # no seed of any pick is known: no held-out regret, and no verdict pretends one
    assert bench.regret["regret_pp_mean"].isna().all()
    assert set(bench.regret["heldout_studies"]) == {0}
    assert "have no seed mean of their picked config" in bench.notes[0]
    assert bench.verdicts[0] == ("On the faq space, no study has a held-out regret (the notes say "
                                 "why): no combination can be said to reach the best config in "
                                 "the table (99.20%).")
    assert "whether it costs accuracy is undecided: no held-out regret" in bench.verdicts[1]


def test_studies_written_before_held_out_scoring_still_render(tmp_path):
    write_compare_group(tmp_path, heldout=False)
    bench = benchmark.summarize(load_studies(StudySource(tmp_path)))
    assert not bench.runs["heldout_scoring"].any()
    assert bench.runs["regret_pp"].isna().all()  # their picks were scored on seen seeds
    # the all-seed means are still shown, for context
    assert bench.regret.set_index("combination").loc[
        "TPE without pruning", "picked_config_accuracy_mean"] == pytest.approx(0.9914)
    assert ("group compare-faq: 8 of 8 studies were written before held-out scoring, so they "
            "have no regret; rerunning the same `mnist-bench compare` command adds it") \
        in bench.notes
    assert "no study has a held-out regret" in bench.verdicts[0]
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["report", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "written before held-out scoring" in (out / "summary.md").read_text()
    assert pd.read_csv(out / "regret.csv")["regret_pp_mean"].isna().all()


def test_a_study_that_saw_every_seed_of_its_pick_has_no_regret_and_says_why(tmp_path):
    # seed 0 queried C three times and drew all its 3 seeds; seed 1 drew C's seed 0 only
    runs = {("random", "none"): [[complete(0.9900, "C"), complete(0.9890, "C"),
                                  complete(0.9880, "C")],
                                 [complete(0.9850, "D"), complete(0.9900, "C")]]}
    write_compare_group(tmp_path, runs=runs)
    bench = benchmark.summarize(load_studies(StudySource(tmp_path)))
    assert list(bench.runs["picked_config_heldout_seeds"]) == [0, 2]
    assert bench.runs["regret_pp"].isna().tolist() == [True, False]
    row = bench.regret.iloc[0]
    assert (row["seeds"], row["heldout_studies"]) == (2, 1)
    assert row["regret_pp_mean"] == pytest.approx(99.14 - (98.90 + 98.80) / 2)
    assert ("group compare-faq: 1 of 2 studies saw every recorded seed of the config they "
            "picked, so they have no regret (no held-out seed: the table has 3 seeds of those "
            "configs; `mnist-bench grid --seeds 5` adds two more)") in bench.notes
    assert bench.verdicts[0].endswith("regret 0.29 pp (one seed: no interval); it is the "
                                      "baseline itself, over 2 sampler seeds (1 with a held-out "
                                      "regret).")


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
    trials, seconds, scatter = benchmark_plots(bench)  # no rank plot: its lines tangled
    assert trials.title == f"Benchmark {GROUP}: regret so far vs trials finished"
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
                                                             pytest.approx(0.19 / 3))
    # the regret's error bar is the regret table's interval, not the std
    row = bench.regret.set_index("combination").loc["TPE+Hyperband"]
    assert means[0].error_y.array[0] == pytest.approx(row["regret_pp_ci_high"] - 0.19 / 3)
    assert means[0].error_y.arrayminus[0] == pytest.approx(0.19 / 3 - row["regret_pp_ci_low"])
    assert scatter.figure.layout.yaxis.title.text.startswith("held-out regret")


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
    assert regret_csv.loc[0, "regret_pp_mean"] == pytest.approx(0.19 / 3)
    assert regret_csv.loc[0, "table_best_seeds"] == 4
    for name in ("regret", "benchmark_runs", "best_so_far_by_trials", "best_so_far_by_seconds",
                 "rank_by_trials", "accuracy", "size", "speed", "pruning", "faq"):
        assert (out / f"{name}.csv").is_file() and (out / f"{name}.md").is_file()
    assert "| 0.06 pp" in (out / "regret.md").read_text()
    assert set(pd.read_csv(out / "accuracy.csv")["studies"]) == {"alpha"}  # no compare study
    assert list(pd.read_csv(out / "pruning.csv")["study"]) == ["alpha"]
    summary = (out / "summary.md").read_text()
    assert "## Benchmark" in summary and "- On the faq space, undecided which combination" in summary
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
