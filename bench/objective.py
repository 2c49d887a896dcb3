"""The objective of a search: sample a config, check it, train it with pruning, record what happened.

Every trial ends with the record the report and finetune read (see bench.layout's ATTR_* keys):
an invalid config is pruned before any training with `invalid_reason`; a trained trial carries
its learning curve, size and speed; a trial that beats the study's best keeps its weights.
"""

from __future__ import annotations

import os
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import optuna
import torch
from torch import nn

from bench import layout
from bench.spaces import SearchSpace
from mnist_cnn.data import TrainValidationSplit
from mnist_cnn.metrics import count_parameters, flops_per_image, measure_model
from mnist_cnn.model import InvalidConfig, validate
from mnist_cnn.train import EpochRecord, TrainResult, train

# Speed measurements per completed trial: enough repeats for a stable median, few enough to be cheap.
MEASURE_REPEATS = 20


@dataclass
class Objective:
    """Callable for `study.optimize`: the value is the best validation accuracy (0..1, maximize).

    Steps reported to the pruner are evaluation counts (1, 2, ...), `evaluations_per_epoch` per
    epoch, so pruners can act within an epoch.
    """

    space: SearchSpace
    split: TrainValidationSplit
    device: torch.device
    epochs: int
    seed: int
    evaluations_per_epoch: int
    results_dir: Path
    study_name: str
    # Wraps every storage write: bench.runner defers a Ctrl-C there to the end of the write.
    storage_section: Callable[[], AbstractContextManager] = nullcontext

    def __call__(self, trial: optuna.Trial) -> float:
        started = time.perf_counter()
        with self.storage_section():
            config, settings = self.space.sample(trial, epochs=self.epochs, seed=self.seed,
                                                 evaluations_per_epoch=self.evaluations_per_epoch)
            trial.set_user_attr(layout.ATTR_CONFIG, asdict(config))
            trial.set_user_attr(layout.ATTR_TRAIN_SETTINGS, asdict(settings))
            try:
                validate(config)
            except InvalidConfig as error:
                trial.set_user_attr(layout.ATTR_INVALID_REASON, str(error))
                trial.set_user_attr(layout.ATTR_END_REASON, f"invalid config: {error}")
                trial.set_user_attr("seconds", time.perf_counter() - started)
                raise optuna.TrialPruned(f"invalid config: {error}") from None
        watcher = _PruningWatcher(trial, self.storage_section)
        try:
            result = train(config, settings, self.split, self.device, on_evaluation=watcher)
        except optuna.TrialPruned as pruned:
            with self.storage_section():
                trial.set_user_attr(layout.ATTR_END_REASON, str(pruned))
            raise
        finally:
            with self.storage_section():
                _record_training(trial, watcher, started)
        with self.storage_section():
            self._record_measurements(trial, result)
            if _beats_best(trial, result.best_validation_accuracy):
                self._keep_weights(trial, watcher.best_state)
            trial.set_user_attr("seconds", time.perf_counter() - started)
        return result.best_validation_accuracy

    def _record_measurements(self, trial: optuna.Trial, result: TrainResult) -> None:
        metrics = measure_model(result.model, repeats=MEASURE_REPEATS)
        for key, value in asdict(metrics).items():
            trial.set_user_attr(key, value)

    def _keep_weights(self, trial: optuna.Trial, state: dict[str, torch.Tensor]) -> None:
        """Save the weights of the best evaluation; bench.runner deletes superseded ones."""
        path = layout.weights_path(self.results_dir, self.study_name, trial.number)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".pt.partial")
        torch.save(state, partial)
        os.replace(partial, path)
        study_dir = layout.study_dir(self.results_dir, self.study_name)
        trial.set_user_attr(layout.ATTR_WEIGHTS, path.relative_to(study_dir).as_posix())


class _PruningWatcher:
    """The `on_evaluation` callback: report, remember the best weights, prune when told."""

    def __init__(self, trial: optuna.Trial,
                 storage_section: Callable[[], AbstractContextManager]) -> None:
        self.trial = trial
        self.storage_section = storage_section
        self.curve: list[EpochRecord] = []
        self.model: nn.Module | None = None
        self.best_accuracy = -1.0
        self.best_state: dict[str, torch.Tensor] = {}

    def __call__(self, record: EpochRecord, model: nn.Module) -> None:
        self.curve.append(record)
        self.model = model
        if record.validation_accuracy > self.best_accuracy:
            self.best_accuracy = record.validation_accuracy
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        step = len(self.curve)
        with self.storage_section():
            self.trial.set_user_attr(layout.ATTR_LEARNING_CURVE, [asdict(r) for r in self.curve])
            self.trial.report(record.validation_accuracy, step)
            prune = self.trial.should_prune()
        if prune:
            raise optuna.TrialPruned(
                f"pruned at epoch {record.epoch:g} (evaluation {step}): validation accuracy "
                f"{record.validation_accuracy:.4f}"
            )


def _record_training(trial: optuna.Trial, watcher: _PruningWatcher, started: float) -> None:
    """What every trained trial records, whether it completed, was pruned or was interrupted."""
    curve = watcher.curve
    trial.set_user_attr(layout.ATTR_LEARNING_CURVE, [asdict(r) for r in curve])
    trial.set_user_attr("epochs_trained", curve[-1].epoch if curve else 0.0)
    trial.set_user_attr("seconds", time.perf_counter() - started)
    train_seconds = sum(r.seconds for r in curve)
    images = sum(r.images_per_second * r.seconds for r in curve)
    if train_seconds > 0:
        trial.set_user_attr("train_images_per_second", images / train_seconds)
    if watcher.model is not None:
        trial.set_user_attr("parameters", count_parameters(watcher.model))
        trial.set_user_attr("flops_per_image", flops_per_image(watcher.model))


def _beats_best(trial: optuna.Trial, value: float) -> bool:
    """Whether `value` beats every completed trial so far (ties keep the earlier trial)."""
    try:
        return value > trial.study.best_value
    except ValueError:  # no completed trial yet
        return True

