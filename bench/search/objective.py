"""The objective of a search: sample a config, check it, train it with pruning, record what happened.

Every trial ends with the record the report and finetune read (see bench.store.layout's ATTR_* keys):
an invalid config is pruned before any training with `invalid_reason`; a trained trial carries
its learning curve, size and speed; a trial that beats the study's best uploads its weights as an
Optuna artifact (bench.store.artifacts).
Every trained curve goes into the curve table (bench.store.curves); with `replay`, a config whose
complete curve is already there is answered from it, evaluation by evaluation through the same
pruner, at its recorded cost, and marked `replayed`.
"""

from __future__ import annotations

import time
import zlib
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import optuna
import torch
from torch import nn

from bench.store import schema
from bench.store.artifacts import upload_weights
from bench.store.curves import CurveTable, StoredCurve
from bench.store.identity import Fidelity
from bench.search.spaces import SearchSpace, TrialPlan
from mnist_cnn.data import TrainValidationSplit
from mnist_cnn.metrics import TRIAL_MEASURE_REPEATS, measure_model, model_size
from mnist_cnn.model import CNNConfig, InvalidConfig
from mnist_cnn.train import EpochRecord, train


@dataclass
class Objective:
    """Callable for `study.optimize`: the value is the best whole-split validation accuracy (0..1).

    Steps reported to the pruner are evaluation counts (1, 2, ...), `evaluations_per_epoch` per
    epoch, so pruners can act within an epoch.
    """

    space: SearchSpace
    split: TrainValidationSplit
    device: torch.device
    plan: TrialPlan
    study_name: str
    # Wraps every storage write: bench.search.runner defers a Ctrl-C there to the end of the write.
    storage_section: Callable[[], AbstractContextManager] = nullcontext
    curves: CurveTable | None = None  # where trained curves are recorded
    replay: bool = False  # answer configs with a complete curve in `curves` from it
    # A replay draws any recorded seed, as a real search meets seed noise; the grid, which fills
    # the table seed by seed, replays only its own seed.
    replay_other_seeds: bool = True
    # Recorded seeds no query may draw: compare scores its picks on them (bench.benchmark.compare).
    reserved_seeds: frozenset[int] = frozenset()
    data_dir: Path | None = None  # part of a curve's fidelity
    artifacts: Any = None  # Optuna artifact store for the best trials' weights; None: keep none

    def __call__(self, trial: optuna.Trial) -> float:
        started = time.perf_counter()
        with self.storage_section():
            config, settings = self.space.sample(trial, self.plan)
            trial.set_user_attr(schema.ATTR_CONFIG, asdict(config))
            trial.set_user_attr(schema.ATTR_TRAIN_SETTINGS, asdict(settings))
            try:
                self.space.check(config)
            except InvalidConfig as error:
                trial.set_user_attr(schema.ATTR_INVALID_REASON, str(error))
                trial.set_user_attr(schema.ATTR_END_REASON, f"invalid config: {error}")
                trial.set_user_attr(schema.ATTR_SECONDS, time.perf_counter() - started)
                raise optuna.TrialPruned(f"invalid config: {error}") from None
        fidelity = Fidelity.of(settings, len(self.split.train), len(self.split.validation),
                               self.data_dir, self.device.type, self.split.seed)
        with self.storage_section():
            trial.set_user_attr(schema.ATTR_FIDELITY, fidelity.record())
        stored = self._recorded(trial, config, fidelity, settings.seed) if self.replay else None
        replayed_steps = 0
        if stored is not None:
            with self.storage_section():
                trial.set_user_attr(schema.ATTR_SEED, stored.seed)
            value = self._replay(trial, stored, started)
            if value is not None:
                return value
            replayed_steps = len(stored.records)  # a partial curve ran out: train past it
        with self.storage_section():
            trial.set_user_attr(schema.ATTR_SEED, settings.seed)
        watcher = _PruningWatcher(trial, self.storage_section, reported=replayed_steps)
        source = f"{self.study_name}#{trial.number}"
        trained = False
        try:
            result = train(config, settings, self.split, self.device, on_evaluation=watcher)
            trained = True
        except optuna.TrialPruned as pruned:
            with self.storage_section():
                trial.set_user_attr(schema.ATTR_END_REASON, str(pruned))
            raise
        finally:
            with self.storage_section():
                _record_training(trial, watcher, started)
                # a trained model's size and speed; a pruned or interrupted one's size alone
                measurements = self._record_model(trial, result.model if trained
                                                  else watcher.model, timed=trained)
            if self.curves is not None and not trained:  # pruned or interrupted: its curve so far
                self.curves.put(config, fidelity, settings.seed, watcher.curve, complete=False,
                                source=source)
        with self.storage_section():
            if self.artifacts is not None and _beats_best(trial, result.best_validation_accuracy):
                upload_weights(trial, watcher.best_state, self.artifacts)
            trial.set_user_attr(schema.ATTR_SECONDS, time.perf_counter() - started)
        if self.curves is not None:
            self.curves.put(config, fidelity, settings.seed, result.history,
                            complete=len(result.history) == fidelity.planned_evaluations,
                            measurements=measurements, source=source)
        return result.best_validation_accuracy

    def _recorded(self, trial: optuna.Trial, config: CNNConfig, fidelity: Fidelity,
                  seed: int) -> StoredCurve | None:
        """What the table knows of this config: one of its complete seeds but the reserved ones,
        drawn per query as NAS-Bench-201 does (reproducibly from study and trial), else this
        search's own partial curve, which training continues."""
        if self.curves is None:
            return None
        recorded = self.curves.seeds(config, fidelity) if self.replay_other_seeds else {}
        recorded = {seed: curve for seed, curve in recorded.items()
                    if seed not in self.reserved_seeds}
        if recorded:
            rng = np.random.default_rng([zlib.crc32(self.study_name.encode()), trial.number])
            return recorded[sorted(recorded)[rng.integers(len(recorded))]]
        return self.curves.get(config, fidelity, seed)

    def _replay(self, trial: optuna.Trial, stored: StoredCurve, started: float) -> float | None:
        """Report the stored curve to the pruner as if trained, at its recorded cost.

        Returns the value of a complete curve, raises TrialPruned where the pruner stops the
        trial within the stored curve, and returns None when a partial curve runs out first
        (the caller then trains; its seed is the search's, which reproduces the replayed part).
        """
        watcher = _PruningWatcher(trial, self.storage_section)
        try:
            for record in stored.records:
                watcher(record, None)
        except optuna.TrialPruned as pruned:
            self._mark_replayed(trial, stored, watcher, started, end_reason=str(pruned))
            raise
        if not stored.complete:
            return None
        self._mark_replayed(trial, stored, watcher, started)
        return stored.best_validation_accuracy

    def _mark_replayed(self, trial: optuna.Trial, stored: StoredCurve, watcher: "_PruningWatcher",
                       started: float, end_reason: str | None = None) -> None:
        with self.storage_section():
            _record_training(trial, watcher, started)
            trial.set_user_attr(schema.ATTR_REPLAYED, True)
            trial.set_user_attr(schema.ATTR_REPLAYED_FROM, stored.source)
            for key, value in stored.measurements.items():
                trial.set_user_attr(key, value)
            # The recorded cost of what was replayed, and of the whole curve had it not been pruned.
            trial.set_user_attr(schema.ATTR_SECONDS, sum(r.seconds for r in watcher.curve))
            if stored.complete:
                trial.set_user_attr(schema.ATTR_FULL_SECONDS, stored.training_seconds)
            if end_reason:
                trial.set_user_attr(schema.ATTR_END_REASON, end_reason)

    def _record_model(self, trial: optuna.Trial, model: nn.Module | None, timed: bool) -> dict:
        """Record the model's measurements (mnist_cnn.metrics): size and speed when `timed`,
        else its size alone; none when no model was trained."""
        if model is None:
            return {}
        measurements = (asdict(measure_model(model, repeats=TRIAL_MEASURE_REPEATS,
                                             precision=self.plan.precision))
                        if timed else model_size(model))
        for key, value in measurements.items():
            trial.set_user_attr(key, value)
        return measurements


class _PruningWatcher:
    """The `on_evaluation` callback: report, remember the best weights, prune when told."""

    def __init__(self, trial: optuna.Trial,
                 storage_section: Callable[[], AbstractContextManager], reported: int = 0) -> None:
        self.trial = trial
        self.reported = reported  # steps already reported (replayed): not reported again
        self.storage_section = storage_section
        self.curve: list[EpochRecord] = []
        self.model: nn.Module | None = None
        self.best_accuracy = -1.0
        self.best_state: dict[str, torch.Tensor] = {}

    def __call__(self, record: EpochRecord, model: nn.Module | None) -> None:
        """`model` is None when the record is replayed from the curve table."""
        self.curve.append(record)
        self.model = model
        measured = model is not None and not record.interim  # interim scores are not measurements
        if measured and record.validation_accuracy > self.best_accuracy:
            self.best_accuracy = record.validation_accuracy
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        step = len(self.curve)
        if step <= self.reported:
            return
        with self.storage_section():
            self.trial.set_user_attr(schema.ATTR_LEARNING_CURVE, [asdict(r) for r in self.curve])
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
    trial.set_user_attr(schema.ATTR_LEARNING_CURVE, [asdict(r) for r in curve])
    trial.set_user_attr(schema.ATTR_EPOCHS_TRAINED, curve[-1].epoch if curve else 0.0)
    trial.set_user_attr(schema.ATTR_SECONDS, time.perf_counter() - started)
    train_seconds = sum(r.seconds for r in curve)
    images = sum(r.images_per_second * r.seconds for r in curve)
    if train_seconds > 0:
        trial.set_user_attr(schema.ATTR_TRAIN_IMAGES_PER_SECOND, images / train_seconds)


def _beats_best(trial: optuna.Trial, value: float) -> bool:
    """Whether `value` beats every completed trial so far (ties keep the earlier trial)."""
    try:
        return value > trial.study.best_value
    except ValueError:  # no completed trial yet
        return True

