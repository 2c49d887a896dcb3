"""bench.evidence: statistics on synthetic studies whose effects are known, built the way the
search and confirm write trials."""

from __future__ import annotations

import re
from dataclasses import asdict

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial
from scipy import stats

from bench.store import schema
from bench.evidence.answers import (NO_EFFECT, SUPPORTED, UNDECIDED, claim_verdict, knob_answer,
                                   pair_sentence)
from bench.evidence.decisions import EQUIVALENT, MARGIN, WORSE
from bench.evidence.measurements import KNOBS, measurements
from bench.evidence.statistics import (config_statistics, decide_pairs, knob_pairs,
                                       paired_difference)
from bench.evidence.gather import gather
from mnist_cnn.model import CNNConfig
from mnist_cnn.train import TrainSettings

FIDELITY = {"train_settings": {"epochs": 1}, "train_size": 1000, "validation_size": 5000,
            "data": "shipped", "device_kind": "cpu"}
BEST = dict(kernel_size=5, stride=1, pool_size=2, pool_stride=2, fc_width=256)
NOISE_SD = 0.001  # 0.1 pp, MNIST's seed noise


def flops(params: dict) -> float:
    """A made-up but monotone cost: more kernel, less stride, more FC -> more FLOPs."""
    return 1e6 * params["kernel_size"] ** 2 / params["stride"] ** 2 / params["pool_stride"] \
        + 1e3 * params["fc_width"]


def add_measurement(study: optuna.Study, params: dict, seed: int, value: float,
                    replayed: bool = False, learning_rate: float = 1e-3, epochs: int = 1,
                    train_subset_loss: float | None = None) -> None:
    """A complete trial; with `train_subset_loss` its curve scored the training subset (at an
    accuracy 0.005 above validation's), without it the curve predates that."""
    config = CNNConfig(channels=(32, 64), **params)
    curve = [dict(epoch=float(epoch), train_loss=0.05, validation_loss=0.06,
                  validation_accuracy=value, seconds=10.0, images_per_second=1000.0)
             for epoch in range(1, epochs + 1)]
    if train_subset_loss is not None:
        curve[-1].update(train_subset_loss=train_subset_loss, train_subset_accuracy=value + 0.005)
    settings = asdict(TrainSettings(epochs=epochs, seed=seed, learning_rate=learning_rate))
    fidelity = {**FIDELITY, "train_settings": {k: v for k, v in settings.items() if k != "seed"}}
    attrs = {schema.ATTR_CONFIG: asdict(config), schema.ATTR_TRAIN_SETTINGS: settings,
             schema.ATTR_FIDELITY: fidelity, schema.ATTR_SEED: seed,
             schema.ATTR_LEARNING_CURVE: curve, "flops_per_image": flops(params),
             "parameters": int(10 * params["fc_width"] + 100 * params["kernel_size"] ** 2),
             "latency_ms_batch1": flops(params) / 1e7}
    if replayed:
        attrs[schema.ATTR_REPLAYED] = True
    study.add_trial(create_trial(
        state=TrialState.COMPLETE, value=value, user_attrs=attrs,
        params={k: params[k] for k in KNOBS},
        distributions={k: CategoricalDistribution([1, 2, 3, 5, 7, 128, 256, 512]) for k in KNOBS}))


def synthetic_study(rng: np.random.Generator, effects: dict[str, float], seeds: int = 4,
                    name: str = "s") -> optuna.Study:
    """The best config and one neighbour per knob, `seeds` seeds each; a neighbour differs from
    the best by `effects[knob]` in mean accuracy, plus seed noise shared by a seed's runs
    (data order) and noise of its own."""
    study = optuna.create_study(study_name=name, direction="maximize")
    neighbours = {"kernel_size": 7, "stride": 2, "pool_size": 3, "pool_stride": 3, "fc_width": 512}
    shared = rng.normal(0, NOISE_SD / 2, size=seeds)
    for seed in range(seeds):
        add_measurement(study, BEST, seed, 0.988 + shared[seed] + rng.normal(0, NOISE_SD))
        for knob, value in neighbours.items():
            params = {**BEST, knob: value}
            add_measurement(study, params, seed, 0.988 + effects.get(knob, 0.0) + shared[seed]
                            + rng.normal(0, NOISE_SD))
    return study


def pairs_of(study: optuna.Study, knob: str):
    measured = measurements([study])
    return decide_pairs(knob_pairs(measured, config_statistics(measured), knob), MARGIN)


def test_a_planted_effect_is_reported_with_its_sign():
    study = synthetic_study(np.random.default_rng(0), {"stride": -0.008, "kernel_size": +0.006})
    stride = pairs_of(study, "stride").iloc[0]
    assert (stride["low_value"], stride["high_value"]) == (1, 2)
    assert stride["effect"] == -1 and stride["ci_high"] < 0
    assert stride["difference"] == pytest.approx(-0.008, abs=0.003)
    kernel = pairs_of(study, "kernel_size").iloc[0]
    assert kernel["effect"] == 1 and kernel["ci_low"] > 0
    answer = knob_answer("stride", pairs_of(study, "stride"))
    assert f"is {SUPPORTED}" in answer[0]  # "too large a stride filters out important features"
    assert "conv stride 2 is less accurate" in answer[1]


def test_knobs_with_no_effect_are_called_an_effect_in_at_most_5_percent_of_studies():
    """300 FAQ families (one pair per knob, 4 seeds, seed noise shared by a seed's runs), the
    stride pair 1 pp apart and the others equal, decided as decide_pairs decides them: a false
    effect in at most 5% of studies (a '9 of 10' count could not tell 10% from 5%), and the
    planted one found in nearly all."""
    rng = np.random.default_rng(100)
    false, found, studies = 0, 0, 300
    for _ in range(studies):
        shared = rng.normal(0, NOISE_SD / 2, size=4)
        rows = [{"knob": knob, "fidelity_key": "f", "resolution": 1 / 5000,
                 "differences": (effect + shared + rng.normal(0, NOISE_SD, 4))
                 - (shared + rng.normal(0, NOISE_SD, 4))}
                for knob, effect in {**{k: 0.0 for k in KNOBS}, "stride": -0.01}.items()]
        pairs = decide_pairs(pd.DataFrame(rows), MARGIN).set_index("knob")
        false += any(claim_verdict([pairs.loc[k, "decision"]], +1) not in (NO_EFFECT, UNDECIDED)
                     for k in KNOBS if k != "stride")
        found += pairs.loc["stride", "decision"] == WORSE
    assert false / studies <= 0.05 and found / studies >= 0.95


def test_two_configs_shown_equivalent_make_the_cheaper_the_one_to_use():
    rng = np.random.default_rng(7)
    study = optuna.create_study(direction="maximize")
    cheap = {**BEST, "kernel_size": 3}
    for seed in range(20):  # equivalence within 0.1 pp at 0.1 pp noise takes ~20 seeds
        noise = rng.normal(0, NOISE_SD, size=2)
        add_measurement(study, BEST, seed, 0.988 + noise[0])
        add_measurement(study, cheap, seed, 0.988 + noise[1])
    evidence = gather([study])
    ranked = evidence.ranked.set_index("kernel_size")
    assert ranked.loc[3, "decision"] == EQUIVALENT or ranked.loc[5, "decision"] == EQUIVALENT
    assert ranked.loc[3, "recommended"] and not ranked.loc[5, "recommended"]
    assert any(line.startswith("The one to use: kernel 3") for line in evidence.headline)


def test_equal_means_at_four_seeds_are_undecided_and_the_best_stays_the_one_to_use():
    """Not rejecting a difference is not equivalence: 4 seeds cannot show +-0.1 pp."""
    rng = np.random.default_rng(7)
    study = optuna.create_study(direction="maximize")
    for seed in range(4):
        noise = rng.normal(0, NOISE_SD, size=2)
        add_measurement(study, BEST, seed, 0.988 + noise[0])
        add_measurement(study, {**BEST, "kernel_size": 3}, seed, 0.988 + noise[1])
    ranked = gather([study], margin=0.001).ranked
    other = ranked[~ranked["is_best"]].iloc[0]
    assert other["decision"] == "undecided" and other["more_seeds"] >= 1
    assert ranked[ranked["recommended"]].iloc[0]["is_best"]


def test_a_clearly_worse_config_is_decided_worse():
    study = synthetic_study(np.random.default_rng(3), {"stride": -0.02})
    ranked = gather([study]).ranked
    worse = ranked[ranked["stride"] == 2].iloc[0]
    assert worse["decision"] == WORSE and worse["diff_ci_high"] < 0 and worse["p_different"] < 0.05


def test_no_sentence_claims_fewer_flops_or_parameters_where_the_count_is_higher():
    study = synthetic_study(np.random.default_rng(1), {"fc_width": 0.003, "pool_stride": -0.004})
    evidence = gather([study])
    checked = 0
    for _, row in evidence.pairs.iterrows():
        sentence = pair_sentence(row)
        assert sentence in evidence.answers  # the report writes this very sentence
        for unit, low, high in (("FLOPs", row["low_flops_per_image"], row["high_flops_per_image"]),
                                ("parameters", row["low_parameters"], row["high_parameters"])):
            word = re.search(rf"x (more|fewer) {unit}\)", sentence)
            if high == low:
                assert f"the same {unit}" in sentence
            else:
                assert word is not None and word.group(1) == ("more" if high > low else "fewer")
                checked += 1
    assert checked == 6  # FLOPs differ in 4 of the 5 pairs, parameters in 2


def test_replays_and_the_same_measurement_in_two_studies_never_inflate_a_count():
    first = optuna.create_study(study_name="search", direction="maximize")
    second = optuna.create_study(study_name="search-confirm", direction="maximize")
    for study in (first, second):
        add_measurement(study, BEST, 0, 0.988)
    add_measurement(first, BEST, 0, 0.988, replayed=True)  # answered from the curve table
    add_measurement(second, BEST, 1, 0.989)
    measured = measurements([first, second])
    assert len(measured) == 2  # seeds 0 and 1
    assert measured.set_index("seed").loc[0, "queries"] == 3
    per_config = config_statistics(measured)
    assert per_config.loc[0, "seeds"] == 2 and per_config.loc[0, "queries"] == 4
    assert per_config.loc[0, "mean"] == pytest.approx(0.9885)


def test_configs_that_differ_in_training_are_ranked_together_and_named_by_it():
    """A space with training knobs: the learning rate is part of the config, not a fidelity."""
    study = optuna.create_study(direction="maximize")
    for seed in range(3):
        add_measurement(study, BEST, seed, 0.990 + 0.0002 * seed, learning_rate=0.003)
        add_measurement(study, BEST, seed, 0.970 + 0.0002 * seed, learning_rate=0.03)
        add_measurement(study, {**BEST, "fc_width": 512}, seed, 0.9895 + 0.0002 * seed,
                        learning_rate=0.003)
    evidence = gather([study])
    assert evidence.notes == []  # one fidelity: the budget, not the learning rate
    assert evidence.ranked["fidelity_key"].nunique() == 1 and len(evidence.ranked) == 3
    best = evidence.ranked[evidence.ranked["is_best"]].iloc[0]
    assert best["training"]["learning_rate"] == 0.003 and best["fc_width"] == 256
    assert "FC 256, lr 0.003" in evidence.headline[0]
    # the FC pair holds the learning rate fixed: like with like, and the sentence says so
    (pair,) = evidence.pairs[evidence.pairs["knob"] == "fc_width"].itertuples()
    assert pair.training_label == "lr 0.003"
    assert any("FC width 256 -> 512 (kernel 5, stride 1, pool 2/2, lr 0.003)" in line
               for line in evidence.answers)


def test_a_lucky_single_seed_is_listed_below_the_configs_with_intervals():
    study = optuna.create_study(direction="maximize")
    for seed in range(3):
        add_measurement(study, BEST, seed, 0.9880 + 0.0002 * seed)
    add_measurement(study, {**BEST, "fc_width": 512}, 0, 0.9950)  # one seed, higher
    ranked = gather([study]).ranked
    assert list(ranked["fc_width"]) == [256, 512] and list(ranked["seeds"]) == [3, 1]
    assert ranked.iloc[0]["is_best"] and ranked.iloc[1]["decision"] == "undecided"


def test_the_loss_gap_is_measured_on_the_training_subset_and_missing_for_older_curves():
    study = optuna.create_study(direction="maximize")
    add_measurement(study, BEST, 0, 0.98)  # recorded before the training subset was scored
    add_measurement(study, BEST, 1, 0.98, train_subset_loss=0.01)
    gaps = measurements([study]).set_index("seed")
    assert np.isnan(gaps.loc[0, "loss_gap"]) and np.isnan(gaps.loc[0, "accuracy_gap"])
    assert np.isnan(gaps.loc[0, "gap_images"])
    # validation loss 0.06 minus the subset's 0.01, not minus the pre-step train_loss 0.05
    assert gaps.loc[1, "loss_gap"] == pytest.approx(0.05)
    assert gaps.loc[1, "accuracy_gap"] == pytest.approx(0.005)
    assert gaps.loc[1, "gap_images"] == 1000  # as many as validation (5,000), at most 1,000 trained
    assert config_statistics(measurements([study])).loc[0, "loss_gap"] == pytest.approx(0.05)
    assert all(np.isnan(paired_difference(np.array([np.nan, np.nan]), np.array([0.1, 0.2]))))


def fc_study(train_subset_losses: dict[int, float] | None) -> optuna.Study:
    """FC 256 and 512 at two epochs, four seeds; `train_subset_losses[fc]`: the subset's loss
    (the gap is 0.06 minus it), or None for curves from before the subset was scored."""
    rng = np.random.default_rng(5)
    study = optuna.create_study(direction="maximize")
    for seed in range(4):
        for fc in (256, 512):
            loss = None if train_subset_losses is None else \
                train_subset_losses[fc] + rng.normal(0, 0.001)
            add_measurement(study, {**BEST, "fc_width": fc}, seed, 0.988 + rng.normal(0, 0.001),
                            epochs=2, train_subset_loss=loss)
    return study


def test_the_overfitting_claim_is_judged_on_runs_paired_along_fc_width_or_not_at_all():
    """At two epochs a budget's FAQ answers judge the claim as bench.evidence.overfitting does
    (one method at every budget of 2+ epochs); curves from before the training subset was scored
    are named, not judged."""
    budget = gather([fc_study({256: 0.03, 512: 0.01})]).budgets[0]
    gap, _ = budget.fc_overfitting
    assert budget.overfitting == [answer.sentence("2 epochs") for answer in budget.fc_overfitting]
    assert all(line in budget.answers for line in budget.overfitting)
    assert budget.overfitting[0].startswith(
        "At 2 epochs, the claim \"a large FC layer overfits\", judged by the generalization gap "
        "at the last epoch (validation loss minus training-subset loss): ")
    assert "(1 base, 4 seeds, 4 pairs of 8 runs)" in budget.overfitting[0]
    assert gap.steps.iloc[0]["estimate"] == pytest.approx(0.02, abs=0.003)  # 0.05 - 0.03
    old = gather([fc_study(None)]).budgets[0]
    assert old.fc_overfitting == [] and old.overfitting == [
        "At 2 epochs, the claim \"a large FC layer overfits\": not measured (none of its 8 runs "
        "scored the training subset: recorded before it was measured; rerun confirm)."]
    assert old.overfitting[0] in old.answers


def test_decisions_pay_for_the_looks_the_confirm_race_planned():
    """A race planned with one look (seeds = max seeds) needs no sequential correction: its
    intervals are the fixed-sample ones, narrower than those of the default 2-to-6 race."""
    rng = np.random.default_rng(4)
    study = optuna.create_study(direction="maximize")
    for seed in range(6):
        add_measurement(study, BEST, seed, 0.988 + rng.normal(0, NOISE_SD))
        add_measurement(study, {**BEST, "kernel_size": 3}, seed, 0.987 + rng.normal(0, NOISE_SD))
    default = gather([study]).ranked.dropna(subset=["difference"]).iloc[0]
    study.set_user_attr(schema.STUDY_ATTR_RACE, {"seeds": 6, "max_seeds": 6})
    planned = gather([study]).ranked.dropna(subset=["difference"]).iloc[0]
    assert planned["difference"] == default["difference"]
    width = planned["diff_ci_high"] - planned["diff_ci_low"]
    assert width < default["diff_ci_high"] - default["diff_ci_low"]
    se = planned["seed_sd"] * np.sqrt(2 / 6)  # the pooled sd, 10 degrees of freedom
    assert planned["seed_df"] == 10
    assert width == pytest.approx(2 * stats.t.isf(0.025, 10) * se)
