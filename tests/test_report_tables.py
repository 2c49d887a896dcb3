"""bench/report/tables.py: every number in the tables is the one stored in the study."""

from __future__ import annotations

import pandas as pd
import pytest
from report_studies import ALPHA_TRIALS, write_finetune, write_study

from bench.evidence.gather import gather
from bench.report import tables
from bench.report.build import _summary_lines
from bench.report.load import load_studies
from bench.store.studies import StudySource


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    write_study(root, "alpha")
    write_study(root, "beta", ALPHA_TRIALS[2:4])
    write_finetune(root, "alpha", "best", trial_number=2, mean=0.9921, std=0.0004)
    return load_studies(StudySource(root))


@pytest.fixture(scope="module")
def evidence(studies):
    return gather(s.study for s in studies)


def test_accuracy_table_is_per_distinct_config_with_replays_folded_in(studies, evidence):
    table = tables.accuracy_table(evidence.ranked, tables.final_models_by_config(studies), limit=4)
    # beta's trial 0 is alpha's trial 2 again (same config, fidelity and seed): one config, asked twice
    assert list(table["kernel_size"]) == [7, 5, 3]
    assert list(table["mean"]) == [0.9910, 0.9906, 0.9850]
    assert list(table["queries"]) == [2, 1, 1] and list(table["heldout_seeds"]) == [0, 0, 0]
    assert list(table["selection_value"]) == [0.9910, 0.9906, 0.9850]  # searches' own values
    assert table["ci_low"].isna().all()  # nothing held out: no interval
    assert list(table["decision"]) == ["best", "undecided", "undecided"]
    assert table.loc[0, "test_accuracy_mean"] == 0.9921
    assert table.loc[0, "test_accuracy_std"] == 0.0004
    assert table["test_accuracy_mean"].iloc[1:].isna().all()  # never evaluated on the test set


def test_size_and_speed_tables_carry_the_measured_attributes(evidence):
    size = tables.size_table(evidence.ranked, limit=20).set_index("kernel_size")
    speed = tables.speed_table(evidence.ranked, limit=20).set_index("kernel_size")
    assert size.loc[5, ["parameters", "flops_per_image"]].tolist() == [200_000, 2_000_000]
    assert speed.loc[5, ["train_images_per_second", "latency_ms_batch1"]].tolist() == [6_000.0, 0.5]
    # pruned, invalid and failed trials are no whole measurement, so they are not configs here
    assert len(size) == 3


def test_pruning_table_counts_states_and_epochs_saved(studies):
    row = tables.pruning_table(studies).set_index("study").loc["alpha"]
    assert (row["trials"], row["completed"], row["pruned"], row["invalid"], row["failed"]) == (
        7, 3, 2, 1, 1)
    assert row["pruned_at_epoch"] == "epoch 1: 1, epoch 2: 1"
    # 5 trained trials x 3 planned epochs; pruned ones stopped after 1 and 2 epochs
    assert (row["epochs_planned"], row["epochs_trained"], row["epochs_saved"]) == (15, 12, 3)
    assert row["epochs_saved_fraction"] == pytest.approx(0.2)


def test_progress_is_best_so_far_over_trials_and_seconds(studies):
    progress = tables.progress_table(studies[0])
    assert list(progress["best_validation_accuracy"]) == [0.985, 0.9906, 0.991, 0.991, 0.991,
                                                          0.991, 0.991]
    assert list(progress["cumulative_seconds"]) == [10, 30, 70, 74, 82, 82, 82]


def test_pareto_front_keeps_points_nothing_beats():
    cost = pd.Series([1.0, 2.0, 3.0, 2.5, 4.0])
    accuracy = pd.Series([0.90, 0.95, 0.97, 0.94, 0.97])
    assert list(tables.pareto_front(cost, accuracy)) == [True, True, True, False, False]


def test_summary_names_best_config_with_its_numbers(studies):
    lines = _summary_lines(studies, gather(s.study for s in studies))
    assert lines[0].startswith("Best config by the search's own value (from 3 searched configs, "
                               "single seed, not held out): kernel 7, stride 1, pool 2/2, FC 256: "
                               "99.10% (the search's own value, not held out, no interval)")
    assert lines[1].startswith("The one to use: kernel 7, stride 1, pool 2/2, FC 256")
    assert lines[2] == ("Test accuracy of the one to use (finetune run best, 3 seeds): "
                        "99.21% ± 0.04 pp (standard deviation) on 10,000 test images of the "
                        "shipped MNIST.")
    assert lines[3].endswith("3 distinct configs, 3 measurements (config x fidelity x seed; "
                             "replays and repeats of one measurement count once).")
