"""bench/report/tables.py: every number in the tables is the one stored in the study."""

from __future__ import annotations

import pandas as pd
import pytest
from report_studies import ALPHA_TRIALS, add_trial, write_finetune, write_study

from bench.report import tables
from bench.report.load import load_studies


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    write_study(root, "alpha")
    write_study(root, "beta", ALPHA_TRIALS[2:4])
    write_finetune(root, "alpha", "best", trial_number=2, mean=0.9921, std=0.0004)
    return load_studies(root)


def test_accuracy_table_ranks_stored_values_and_adds_test_accuracy_only_when_finetuned(studies):
    table = tables.accuracy_table(studies, limit=4)
    assert list(zip(table["study"], table["trial"])) == [("alpha", 2), ("beta", 0), ("alpha", 1),
                                                         ("alpha", 0)]
    assert list(table["validation_accuracy"]) == [0.9910, 0.9910, 0.9906, 0.9850]
    assert list(table["state"]) == ["complete"] * 4
    assert list(table["epochs_trained"]) == [3, 3, 3, 3]
    assert table.loc[0, "test_accuracy_mean"] == 0.9921
    assert table.loc[0, "test_accuracy_std"] == 0.0004
    assert table["test_accuracy_mean"].iloc[1:].isna().all()  # never evaluated on the test set
    assert list(table["kernel_size"]) == [7, 7, 5, 3]


def test_size_and_speed_tables_carry_the_measured_attributes(studies):
    size = tables.size_table(studies, limit=20)
    speed = tables.speed_table(studies, limit=20)
    alpha_1 = (size["study"] == "alpha") & (size["trial"] == 1)
    assert size.loc[alpha_1, ["parameters", "flops_per_image"]].values.tolist() == [
        [200_000, 2_000_000]]
    assert speed.loc[alpha_1, ["train_images_per_second", "latency_ms_batch1",
                               "inference_images_per_second"]].values.tolist() == [
        [6_000.0, 0.5, 20_000.0]]
    # invalid and failed trials have no accuracy, so they are not among the top trials
    assert len(size) == 5 + 2


def test_pruning_table_counts_states_and_epochs_saved(studies):
    row = tables.pruning_table(studies).set_index("study").loc["alpha"]
    assert (row["trials"], row["completed"], row["pruned"], row["invalid"], row["failed"]) == (
        7, 3, 2, 1, 1)
    assert row["pruned_at_epoch"] == "epoch 1: 1, epoch 2: 1"
    # 5 trained trials x 3 planned epochs; pruned ones stopped after 1 and 2 epochs
    assert (row["epochs_planned"], row["epochs_trained"], row["epochs_saved"]) == (15, 12, 3)
    assert row["epochs_saved_fraction"] == pytest.approx(0.2)


def test_faq_table_and_answer_come_from_completed_trials(studies):
    alpha = studies[0]
    table = tables.faq_table(alpha)
    kernel = table[table["parameter"] == "kernel_size"].set_index("value")
    assert list(kernel.index) == [3, 5, 7]
    assert list(kernel["best_validation_accuracy"]) == [0.9850, 0.9906, 0.9910]
    assert list(kernel["median_flops_per_image"]) == [1_000_000, 2_000_000, 3_800_000]
    fc = table[table["parameter"] == "fc_width"].set_index("value")
    assert fc.loc[128, "trials"] == 2
    assert fc.loc[128, "median_validation_accuracy"] == pytest.approx((0.9850 + 0.9906) / 2)
    answers = tables.faq_answers(alpha, table)
    assert answers[0] == ("kernel size 5 matched kernel size 7 within 0.04 pp (best 99.06% vs "
                          "99.10%) at 1.9x fewer FLOPs per image (n=1 vs n=1 completed trials).")
    assert answers[1].startswith("stride: only stride 1 was tried (n=3 completed")


def test_faq_answer_names_a_clear_winner(tmp_path):
    study = write_study(tmp_path, "s", ALPHA_TRIALS[:1])
    add_trial(study, "complete", dict(kernel_size=5, stride=1, pool_size=2, fc_width=128), 0.95,
              dict(parameters=1, flops_per_image=9_000_000, seconds=1.0), 3)
    (loaded,) = load_studies(tmp_path)
    answer = tables.faq_answers(loaded)[0]
    assert answer == ("kernel size 3 was the most accurate (best 98.50%, n=1 completed), "
                      "3.50 pp ahead of kernel size 5, and it was also the cheapest in FLOPs.")


def test_many_fc_widths_are_grouped_by_nearest_power_of_two(tmp_path):
    study = write_study(tmp_path, "s", [])
    widths = [32, 40, 64, 70, 128, 150, 200, 256, 300]
    for i, width in enumerate(widths):
        study.add_trial(_complete_trial(width, 0.98 + i / 1000))
    (loaded,) = load_studies(tmp_path)
    fc = tables.faq_table(loaded).query("parameter == 'fc_width'").set_index("value")
    assert list(fc.index) == [32, 64, 128, 256]
    assert list(fc["trials"]) == [2, 2, 2, 3]
    assert fc.loc[256, "values_seen"] == "200-300"
    assert "FC width ~256" in tables.faq_answer(tables.faq_table(loaded), "fc_width")


def _complete_trial(fc_width: int, value: float):
    from optuna.trial import create_trial

    return create_trial(value=value, user_attrs={
        "config": {"kernel_size": 3, "fc_width": fc_width}, "flops_per_image": fc_width * 1000,
        "parameters": fc_width, "seconds": 1.0})


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
    lines = tables.summary_lines(studies)
    assert lines[0].startswith("Best config: study alpha, trial 2: channels=32,64, kernel_size=7")
    assert "99.10%" in lines[1] and "400,000 parameters" in lines[1]
    assert "1 ms at batch 1, 10,000 images/s at batch 256" in lines[1]
    assert lines[2] == "Test accuracy (finetune run best, 3 repeats): 99.21% ± 0.04 pp."
