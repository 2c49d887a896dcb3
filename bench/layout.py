"""Where a study's files live under the results folder: the one place paths are decided.

results/curves.db                   the curve table (bench.curves): every trained learning curve
results/<study>/study.db            the Optuna storage (SQLite by default)
results/<study>/trials.csv          rewritten after every finished trial
results/artifacts/                  Optuna artifact store (default): kept weights of best trials
results/<study>/finetune/<run>/     finetuned models: weights, export, metrics.json
results/<study>/report/             the report's tables, plots and index.html
"""

from __future__ import annotations

from pathlib import Path

import click

# Trial user-attribute keys written by the search and read by the report and finetune.
ATTR_CONFIG = "config"  # dataclasses.asdict(CNNConfig)
ATTR_TRAIN_SETTINGS = "train_settings"  # dataclasses.asdict(TrainSettings)
ATTR_LEARNING_CURVE = "learning_curve"  # list of dataclasses.asdict(EpochRecord)
ATTR_WEIGHTS = "weights"  # artifact id of the kept weights (bench.artifacts)
ATTR_INVALID_REASON = "invalid_reason"  # set on trials pruned because the config collapses
ATTR_END_REASON = "end_reason"  # why a trial was pruned, failed or interrupted
ATTR_REPLAYED = "replayed"  # True: answered from the curve table, not trained
ATTR_REPLAYED_FROM = "replayed_from"  # the "study#trial" that measured the replayed curve
ATTR_FULL_SECONDS = "full_seconds"  # replayed: recorded training seconds of the whole curve
ATTR_FIDELITY = "fidelity"  # bench.curves.Fidelity.record(): what the value was measured at
ATTR_SEED = "seed"  # the training seed of the curve behind the value (drawn, when replayed)


def curve_table(results_dir: Path) -> Path:
    """The default curve table: searches record into it and replay from it."""
    return Path(results_dir) / "curves.db"


def study_dir(results_dir: Path, study_name: str) -> Path:
    return Path(results_dir) / study_name


def study_db(results_dir: Path, study_name: str) -> Path:
    """The SQLite file behind `sqlite_url`; a folder with one is a study."""
    return study_dir(results_dir, study_name) / "study.db"


def study_names(results_dir: Path) -> list[str]:
    """Names of the folders of `results_dir` that hold a study database, sorted."""
    root = Path(results_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if study_db(root, p.name).is_file())


def sqlite_url(results_dir: Path, study_name: str) -> str:
    return f"sqlite:///{(study_dir(results_dir, study_name) / 'study.db').resolve()}"


def trials_csv(results_dir: Path, study_name: str) -> Path:
    return study_dir(results_dir, study_name) / "trials.csv"


def artifacts_dir(results_dir: Path) -> Path:
    """The default artifact store: one folder for every study's kept weights."""
    return Path(results_dir) / "artifacts"


def finetune_dir(results_dir: Path, study_name: str, run_name: str) -> Path:
    return study_dir(results_dir, study_name) / "finetune" / run_name


# Files inside a finetune run folder (finetune_dir); the report reads FINETUNE_METRICS.
FINETUNE_METRICS = "metrics.json"  # test accuracy mean/spread, per class, confusion, speed
FINETUNE_WEIGHTS = "weights.pt"  # state_dict of the exported model
FINETUNE_CONFIG = "config.json"  # dataclasses.asdict(CNNConfig) of those weights
FINETUNE_EXPORT = "model.pt2"  # torch.export program: pixels in [0, 1] -> logits
FINETUNE_SETTINGS = "settings.json"  # the run's settings, checked again by --resume


def finetune_checkpoint(run_dir: Path, seed: int, kind: str) -> Path:
    """A repeat's files under checkpoints/: kind is "last", "best", "trained", "final" or "done"."""
    return Path(run_dir) / "checkpoints" / f"seed_{seed}_{kind}.pt"


def report_dir(results_dir: Path, study_name: str | None) -> Path:
    return (study_dir(results_dir, study_name) if study_name else Path(results_dir)) / "report"


def ensure_results_dir(results_dir: Path) -> Path:
    """Create the results folder, or stop with a one-line usage error if it cannot be one."""
    path = Path(results_dir)
    if path.exists() and not path.is_dir():
        raise click.BadParameter(f"{path} exists and is not a folder", param_hint="--results-dir")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise click.BadParameter(f"cannot create {path}: {error.strerror}", param_hint="--results-dir")
    return path
