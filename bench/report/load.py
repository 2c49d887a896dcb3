"""Studies under a results folder -> pandas frames, read from Optuna's storage and metrics.json files."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import pandas as pd

from bench import layout
from bench.evidence.measurements import config_id

# One state per trial, as the report counts them: Optuna's state, with invalid configs split out.
STATE_COMPLETE, STATE_PRUNED, STATE_INVALID, STATE_FAILED, STATE_RUNNING = (
    "complete", "pruned", "invalid", "failed", "running",
)
_OPTUNA_STATES = {
    optuna.trial.TrialState.COMPLETE: STATE_COMPLETE,
    optuna.trial.TrialState.PRUNED: STATE_PRUNED,
    optuna.trial.TrialState.FAIL: STATE_FAILED,
    optuna.trial.TrialState.RUNNING: STATE_RUNNING,
    optuna.trial.TrialState.WAITING: STATE_RUNNING,
}
# Trial user attributes copied into the frame as they are (numbers measured by the search).
MEASURED_ATTRS = (
    "parameters", "flops_per_image", "train_images_per_second", "latency_ms_batch1",
    "inference_images_per_second", "seconds",
)
CONFIG_FIELDS = (
    "conv_blocks", "channels", "kernel_size", "stride", "padding", "pool_size", "pool_stride",
    "pool_type", "fc_width", "dropout",
)
SETTINGS_FIELDS = ("epochs", "batch_size", "learning_rate", "weight_decay", "lr_schedule", "augment",
                   "evaluations_per_epoch")


class NoStudies(ValueError):
    """The folder or study name given points at no study: bad input."""


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


def find_study_folders(results_dir: Path, study_name: str | None = None) -> list[Path]:
    """Study folders (those holding a study.db) under results_dir, or the one named; NoStudies if none."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise NoStudies(f"results folder {results_dir} does not exist")
    folders = [results_dir / name for name in layout.study_names(results_dir)]
    if study_name is not None:
        chosen = [f for f in folders if f.name == study_name]
        if not chosen:
            known = ", ".join(f.name for f in folders) or "none"
            raise NoStudies(f"no study {study_name!r} under {results_dir} (studies there: {known})")
        return chosen
    if not folders:
        raise NoStudies(
            f"no studies under {results_dir} (looked for {results_dir}/*/study.db); "
            "run `mnist-bench search` first"
        )
    return folders


def load_studies(results_dir: Path, study_name: str | None = None) -> list[StudyData]:
    """Every study in every study folder under results_dir (or the named one), oldest name first."""
    results_dir = Path(results_dir)
    studies = []
    for folder in find_study_folders(results_dir, study_name):
        url = layout.sqlite_url(results_dir, folder.name)
        try:
            names = optuna.get_all_study_names(storage=url)
        except Exception as error:  # a damaged or foreign file: say which, in one line
            raise NoStudies(f"cannot read {layout.study_db(results_dir, folder.name)}: "
                            f"{str(error).splitlines()[0]}") from None
        for name in sorted(names):
            study = optuna.load_study(study_name=name, storage=url)
            # Final models belong to the folder; give them to its study of the same name (or the only one).
            owns_finetune = name == folder.name or len(names) == 1
            studies.append(StudyData(
                name=name, folder=folder, study=study, trials=trials_frame(study),
                finetune=load_finetune(folder) if owns_finetune else [],
            ))
    if not studies:
        raise NoStudies(f"the study files under {results_dir} hold no studies")
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
        frame = pd.DataFrame(columns=["trial", "config_id", "state", "validation_accuracy", "learning_curve",
                                      "replayed", "training_seconds", "full_seconds", "seconds"])
    return frame


def _trial_row(trial: optuna.trial.FrozenTrial) -> dict:
    attrs = trial.user_attrs
    config = attrs.get(layout.ATTR_CONFIG) or {}
    settings = attrs.get(layout.ATTR_TRAIN_SETTINGS) or {}
    curve = attrs.get(layout.ATTR_LEARNING_CURVE) or []
    state = _OPTUNA_STATES[trial.state]
    if state == STATE_PRUNED and attrs.get(layout.ATTR_INVALID_REASON):
        state = STATE_INVALID
    epochs_trained = attrs.get("epochs_trained")
    if epochs_trained is None:
        epochs_trained = curve[-1]["epoch"] if curve else 0
    if curve:
        last_epoch = curve[-1]["epoch"]
    else:
        last_epoch = trial.last_step
    row = {
        "trial": trial.number,
        "config_id": config_id(config) if config else None,  # one id per distinct network
        "state": state,
        "validation_accuracy": trial.value,
        "epochs_trained": epochs_trained,
        "planned_epochs": settings.get("epochs"),
        "pruned_at_epoch": last_epoch if state == STATE_PRUNED else None,
        "invalid_reason": attrs.get(layout.ATTR_INVALID_REASON),
        "end_reason": attrs.get(layout.ATTR_END_REASON),
        "weights": attrs.get(layout.ATTR_WEIGHTS),
        "datetime_complete": trial.datetime_complete,
        "learning_curve": curve,
        # Answered from the curve table instead of trained (measured by `replayed_from`).
        "replayed": bool(attrs.get(layout.ATTR_REPLAYED, False)),
        "replayed_from": attrs.get(layout.ATTR_REPLAYED_FROM),
        # The recorded cost: training seconds summed over the curve (evaluation not included).
        "training_seconds": float(sum(point.get("seconds") or 0.0 for point in curve)),
        "full_seconds": attrs.get(layout.ATTR_FULL_SECONDS),
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
