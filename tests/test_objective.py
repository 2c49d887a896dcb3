"""bench.search.objective: invalid configs are pruned untrained, trained trials record everything."""

from __future__ import annotations

import optuna
import pytest
import torch

from optuna.artifacts import get_all_artifact_meta

from bench.store import schema
from bench.store.artifacts import download_weights, open_artifact_store
from bench.search.objective import Objective
from bench.search.spaces import TrialPlan, parse_space
from mnist_cnn.data import load_train_validation
from mnist_cnn.model import CNNConfig, build_model

SPACE = """
[params.pool_size]
type = "categorical"
choices = [2, 3]

[fixed]
channels = [4, 8]
stride = 2
fc_width = 16
batch_size = 50
learning_rate = 0.01
"""


@pytest.fixture
def objective(tiny_mnist, tmp_path):
    return Objective(
        space=parse_space(SPACE, name="tiny", source="tiny.toml"),
        split=load_train_validation(tiny_mnist, validation_size=200, seed=0),
        device=torch.device("cpu"), plan=TrialPlan(epochs=1, seed=0, evaluations_per_epoch=2),
        study_name="s",
        artifacts=open_artifact_store(tmp_path / "artifacts"),
    )


def _run(objective, pool_size, pruner=None, storage=None):
    study = optuna.create_study(direction="maximize", pruner=pruner, storage=storage)
    study.enqueue_trial({"pool_size": pool_size})
    study.optimize(objective, n_trials=1)
    return study.trials[0]


def test_collapsing_config_is_pruned_before_training(objective):
    # stride 2 with pool 3 twice: 28 -> 14 -> 4 -> 2 -> 0
    trial = _run(objective, pool_size=3)
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert "smaller than pool 3" in trial.user_attrs[schema.ATTR_INVALID_REASON]
    assert trial.user_attrs[schema.ATTR_END_REASON].startswith("invalid config")
    assert schema.ATTR_LEARNING_CURVE not in trial.user_attrs
    assert trial.user_attrs[schema.ATTR_CONFIG]["pool_size"] == 3


def test_completed_trial_records_curve_measurements_and_weights(objective, tmp_path):
    storage = optuna.storages.InMemoryStorage()
    trial = _run(objective, pool_size=2, storage=storage)
    assert trial.state == optuna.trial.TrialState.COMPLETE
    attrs = trial.user_attrs
    curve = attrs[schema.ATTR_LEARNING_CURVE]
    assert [point["epoch"] for point in curve] == [0.5, 1.0]
    assert trial.value == max(point["validation_accuracy"] for point in curve) > 0.5
    assert trial.intermediate_values == {1: curve[0]["validation_accuracy"],
                                         2: curve[1]["validation_accuracy"]}
    for key in ("parameters", "flops_per_image", "train_images_per_second", "latency_ms_batch1",
                "inference_images_per_second", "seconds"):
        assert attrs[key] > 0, key
    assert attrs["epochs_trained"] == 1.0
    assert attrs[schema.ATTR_TRAIN_SETTINGS]["evaluations_per_epoch"] == 2
    config = CNNConfig(**attrs[schema.ATTR_CONFIG])
    (meta,) = get_all_artifact_meta(trial, storage=storage)  # an Optuna artifact of the trial
    assert meta.artifact_id == attrs[schema.ATTR_WEIGHTS]
    assert meta.filename == "trial_0_weights.pt"
    weights = download_weights(trial, storage, objective.artifacts)
    model = build_model(config)
    model.load_state_dict(weights)
    assert sum(p.numel() for p in model.parameters()) == attrs["parameters"]


def test_interim_scores_guide_the_pruner_but_the_value_and_weights_are_whole_split(objective):
    from dataclasses import replace

    from mnist_cnn.train import evaluate

    storage = optuna.storages.InMemoryStorage()
    subset = replace(objective, plan=replace(objective.plan, interim_validation_size=50))
    trial = _run(subset, pool_size=2, storage=storage)
    curve = trial.user_attrs[schema.ATTR_LEARNING_CURVE]
    assert [point["interim"] for point in curve] == [True, False]
    assert trial.intermediate_values[1] == curve[0]["validation_accuracy"]  # the pruner saw it
    assert trial.value == curve[1]["validation_accuracy"]
    assert trial.user_attrs[schema.ATTR_TRAIN_SETTINGS]["interim_validation_size"] == 50
    model = build_model(CNNConfig(**trial.user_attrs[schema.ATTR_CONFIG]))
    model.load_state_dict(download_weights(trial, storage, objective.artifacts))
    kept = evaluate(model, objective.split.validation, torch.device("cpu")).accuracy
    assert kept == trial.value


def test_pruner_stops_training_at_a_reported_step(objective):
    trial = _run(objective, pool_size=2, pruner=optuna.pruners.ThresholdPruner(lower=1.01))
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert len(trial.user_attrs[schema.ATTR_LEARNING_CURVE]) == 1
    assert "pruned at epoch 0.5 (evaluation 1)" in trial.user_attrs[schema.ATTR_END_REASON]
    assert trial.user_attrs["parameters"] > 0 and schema.ATTR_WEIGHTS not in trial.user_attrs


@pytest.fixture
def recording(objective, tmp_path):
    """The objective recording into a curve table, and a replaying twin on the same table."""
    from dataclasses import replace

    from bench.store.curves import CurveTable

    table = CurveTable(tmp_path / "curves.db")
    return replace(objective, curves=table), replace(objective, curves=table, replay=True), table


def test_trained_curve_is_recorded_and_replayed_with_its_cost(recording):
    trainer, replayer, table = recording
    trained = _run(trainer, pool_size=2)
    stored = table.curves()
    assert len(stored) == 1 and stored[0].complete
    assert stored[0].measurements["parameters"] == trained.user_attrs["parameters"]

    replayed = _run(replayer, pool_size=2)
    attrs = replayed.user_attrs
    assert replayed.value == trained.value
    assert replayed.intermediate_values == trained.intermediate_values
    assert attrs[schema.ATTR_REPLAYED] is True and attrs[schema.ATTR_REPLAYED_FROM] == "s#0"
    assert attrs[schema.ATTR_LEARNING_CURVE] == trained.user_attrs[schema.ATTR_LEARNING_CURVE]
    curve_seconds = sum(p["seconds"] for p in attrs[schema.ATTR_LEARNING_CURVE])
    assert attrs["seconds"] == pytest.approx(curve_seconds)
    assert attrs[schema.ATTR_FULL_SECONDS] == pytest.approx(curve_seconds)
    assert attrs["parameters"] == trained.user_attrs["parameters"]
    assert schema.ATTR_WEIGHTS not in attrs  # nothing was trained, so no weights
    assert schema.ATTR_REPLAYED not in trained.user_attrs


def test_replayed_trial_is_pruned_by_the_same_pruner(recording):
    trainer, replayer, _ = recording
    _run(trainer, pool_size=2)
    pruned = _run(replayer, pool_size=2, pruner=optuna.pruners.ThresholdPruner(lower=1.01))
    assert pruned.state == optuna.trial.TrialState.PRUNED
    assert pruned.user_attrs[schema.ATTR_REPLAYED] is True
    assert len(pruned.user_attrs[schema.ATTR_LEARNING_CURVE]) == 1
    assert pruned.user_attrs["seconds"] < pruned.user_attrs[schema.ATTR_FULL_SECONDS]
    assert "pruned at epoch 0.5" in pruned.user_attrs[schema.ATTR_END_REASON]


def test_partial_curve_is_continued_by_training(recording):
    trainer, replayer, table = recording
    first = _run(trainer, pool_size=2, pruner=optuna.pruners.ThresholdPruner(lower=1.01))
    assert [c.complete for c in table.curves()] == [False]
    continued = _run(replayer, pool_size=2)
    assert continued.state == optuna.trial.TrialState.COMPLETE
    assert schema.ATTR_REPLAYED not in continued.user_attrs  # it trained
    curve = continued.user_attrs[schema.ATTR_LEARNING_CURVE]
    # The same seed retrains the replayed part to the same values.
    assert curve[0]["validation_accuracy"] == \
        first.user_attrs[schema.ATTR_LEARNING_CURVE][0]["validation_accuracy"]
    assert sorted(continued.intermediate_values) == [1, 2]
    assert [c.complete for c in table.curves()] == [True]
