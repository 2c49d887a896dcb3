"""Studies under a results folder -> pandas frames, read from Optuna's storage and metrics.json files."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import pandas as pd

from bench.store import layout, schema
from bench.store.schema import (STATE_COMPLETE, STATE_FAILED, STATE_INVALID, STATE_PRUNED,
                                 STATE_RUNNING)
from bench.store.identity import trial_config_key
from bench.store.studies import StudySource

_OPTUNA_STATES = {
    optuna.trial.TrialState.COMPLETE: STATE_COMPLETE,
    optuna.trial.TrialState.PRUNED: STATE_PRUNED,
    optuna.trial.TrialState.FAIL: STATE_FAILED,
    optuna.trial.TrialState.RUNNING: STATE_RUNNING,
    optuna.trial.TrialState.WAITING: STATE_RUNNING,
}
# Trial user attributes copied into the frame as they are (numbers measured by the search).
MEASURED_ATTRS = (
    schema.ATTR_PARAMETERS, schema.ATTR_FLOPS_PER_IMAGE, schema.ATTR_TRAIN_IMAGES_PER_SECOND,
    schema.ATTR_LATENCY_MS_BATCH1, schema.ATTR_INFERENCE_IMAGES_PER_SECOND, schema.ATTR_SECONDS,
)
CONFIG_FIELDS = (
    "conv_blocks", "channels", "kernel_size", "stride", "padding", "pool_size", "pool_stride",
    "pool_type", "fc_width", "dropout",
)
SETTINGS_FIELDS = ("epochs", "batch_size", "learning_rate", "weight_decay", "lr_schedule", "augment",
                   "evaluations_per_epoch")


class NothingToReport(Exception):
    """Studies exist but none has a completed trial yet."""


@dataclass
class StudyData:
    """One study as the report sees it: the Optuna study, its trials table and its final models."""

    name: str
    folder: Path
    study: optuna.Study
    trials: pd.DataFrame
    finetune: list[dict] = field(default_factory=list)

    @property
    def completed(self) -> pd.DataFrame:
        return self.trials[self.trials["state"] == STATE_COMPLETE]


def load_studies(source: StudySource, study_name: str | None = None) -> list[StudyData]:
    """Every study of `source` (or the named one and its relatives), oldest name first;
    StudyNotFound when there is none."""
    studies = []
    for folder, study in source.load_related(study_name):
        studies.append(StudyData(name=study.study_name, folder=folder, study=study,
                                 trials=trials_frame(study)))
    # Final models are written to a study's folder under the results folder: they belong to
    # its study of the same name, or to the folder's only study.
    for data in studies:
        siblings = [s for s in studies if s.folder == data.folder]
        if data.name == data.folder.name or len(siblings) == 1:
            data.finetune = load_finetune(data.folder)
    return studies


def with_completed_trials(studies: list[StudyData]) -> tuple[list[StudyData], list[str]]:
    """Studies that have a completed trial, and a one-line note for each skipped one."""
    kept = [s for s in studies if len(s.completed)]
    skipped = [
        f"study {s.name!r} has no completed trial yet ({len(s.trials)} trials); skipped"
        for s in studies if not len(s.completed)
    ]
    if not kept:
        raise NothingToReport("; ".join(skipped))
    return kept, skipped


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial with its state, value, config, settings and measured attributes."""
    rows = [_trial_row(trial) for trial in study.get_trials(deepcopy=False)]
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=["trial", "config_key", "state", "validation_accuracy",
                                      "learning_curve", "replayed", "training_seconds",
                                      "full_seconds", "seconds"])
    return frame


def _trial_row(trial: optuna.trial.FrozenTrial) -> dict:
    attrs = trial.user_attrs
    config = attrs.get(schema.ATTR_CONFIG) or {}
    settings = attrs.get(schema.ATTR_TRAIN_SETTINGS) or {}
    curve = attrs.get(schema.ATTR_LEARNING_CURVE) or []
    state = _OPTUNA_STATES[trial.state]
    if state == STATE_PRUNED and attrs.get(schema.ATTR_INVALID_REASON):
        state = STATE_INVALID
    epochs_trained = attrs.get(schema.ATTR_EPOCHS_TRAINED)
    if epochs_trained is None:
        epochs_trained = curve[-1]["epoch"] if curve else 0
    if curve:
        last_epoch = curve[-1]["epoch"]
    else:
        last_epoch = trial.last_step
    row = {
        "trial": trial.number,
        "config_key": trial_config_key(trial),  # one id per distinct network and training
        "state": state,
        "validation_accuracy": trial.value,
        "epochs_trained": epochs_trained,
        "planned_epochs": settings.get("epochs"),
        "pruned_at_epoch": last_epoch if state == STATE_PRUNED else None,
        "invalid_reason": attrs.get(schema.ATTR_INVALID_REASON),
        "end_reason": attrs.get(schema.ATTR_END_REASON),
        "weights": attrs.get(schema.ATTR_WEIGHTS),
        "datetime_complete": trial.datetime_complete,
        "learning_curve": curve,
        # Answered from the curve table instead of trained (measured by `replayed_from`).
        "replayed": bool(attrs.get(schema.ATTR_REPLAYED, False)),
        "replayed_from": attrs.get(schema.ATTR_REPLAYED_FROM),
        # The recorded cost: training seconds summed over the curve (evaluation not included).
        "training_seconds": float(sum(point.get("seconds") or 0.0 for point in curve)),
        "full_seconds": attrs.get(schema.ATTR_FULL_SECONDS),
    }
    for key in MEASURED_ATTRS:
        row[key] = attrs.get(key)
    for key in CONFIG_FIELDS:
        row[key] = config.get(key, trial.params.get(key))
    if isinstance(row["channels"], list):
        row["channels"] = ",".join(str(c) for c in row["channels"])
    for key in SETTINGS_FIELDS:
        row[key] = settings.get(key, trial.params.get(key))
    for key, value in trial.params.items():
        row[f"param_{key}"] = value
    return row


def load_finetune(study_folder: Path) -> list[dict]:
    """The metrics.json of every finetune run of a study folder, each with its run name added."""
    runs = []
    for path in sorted(Path(study_folder).glob(f"finetune/*/{layout.FINETUNE_METRICS}")):
        try:
            metrics = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # a run still being written; the next report picks it up
        if not isinstance(metrics, dict) or not isinstance(metrics.get("trial_number"), int):
            continue
        if not _finite(metrics.get("test_accuracy_mean")):
            continue
        metrics["run"] = path.parent.name
        metrics["written"] = path.stat().st_mtime
        runs.append(metrics)
    return runs


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
