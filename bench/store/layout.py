"""Where a study's files live under the results folder: the one place paths are decided.

results/curves.db                   the curve table (bench.store.curves): every trained learning curve
results/<study>/study.db            the Optuna storage (SQLite by default)
results/<group>/journal.log         a compare group's studies (Optuna's journal file storage)
results/<study>/trials.csv          rewritten after every finished trial
results/artifacts/                  Optuna artifact store (default): kept weights of best trials
results/<study>/finetune/<run>/     finetuned models: weights, export, metrics.json
results/<study>/report/             the report's tables, plots and index.html
"""

from __future__ import annotations

import re
from pathlib import Path

# A study, group or run name is one plain folder name: it can never point outside its parent.
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class InvalidName(ValueError):
    """A study, group or run name that is not a plain folder name: bad input."""


def is_plain_name(name: str) -> bool:
    return bool(PLAIN_NAME.fullmatch(name)) and ".." not in name


def check_name(name: str, what: str = "study name") -> str:
    """`name` when it is a plain name (letters, digits, '.', '_', '-'; no path separators, no
    '..', not empty), else InvalidName saying so."""
    if not is_plain_name(name):
        raise InvalidName(f"{what} {name!r} is not a plain name: use letters, digits, '.', '_' "
                          "and '-', starting with a letter or digit (no '/', no '..')")
    return name


class FolderError(ValueError):
    """An output folder that cannot be made (a file in its path, a read-only or virtual file
    system): bad input, found before a command trains or writes anything else."""


def make_folder(path: Path) -> Path:
    """`path` made with its parents, or FolderError in one line."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FolderError(f"cannot create {path}: {error.strerror}") from None
    return path


def curve_table(results_dir: Path) -> Path:
    """The default curve table: searches record into it and replay from it."""
    return Path(results_dir) / "curves.db"


def study_dir(results_dir: Path, study_name: str) -> Path:
    return Path(results_dir) / check_name(study_name)


def study_db(results_dir: Path, study_name: str) -> Path:
    """The SQLite file behind `sqlite_url`; a folder with one is a study."""
    return study_dir(results_dir, study_name) / "study.db"


def study_journal(results_dir: Path, study_name: str) -> Path:
    """The journal file of a compare group (bench.store.storage.open_journal): hundreds of
    finished studies write there many times faster than to SQLite."""
    return study_dir(results_dir, study_name) / "journal.log"


def study_file(results_dir: Path, study_name: str) -> Path:
    """The file a study folder keeps its studies in: study.db, or else its journal."""
    database = study_db(results_dir, study_name)
    journal = study_journal(results_dir, study_name)
    return journal if journal.is_file() and not database.is_file() else database


def study_names(results_dir: Path) -> list[str]:
    """Names of the folders of `results_dir` that hold a study database or journal, sorted."""
    root = Path(results_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if is_plain_name(p.name) and study_file(root, p.name).is_file())


def sqlite_url(results_dir: Path, study_name: str) -> str:
    return f"sqlite:///{(study_dir(results_dir, study_name) / 'study.db').resolve()}"


def trials_csv(results_dir: Path, study_name: str) -> Path:
    return study_dir(results_dir, study_name) / "trials.csv"


def reference_tables(results_dir: Path) -> list[Path]:
    """The reference tables under results/reference/ (bench.store.reference): a clone ships
    them, so a report answers from them before any local study exists."""
    return sorted((Path(results_dir) / "reference").glob("*.jsonl"))


def artifacts_dir(results_dir: Path) -> Path:
    """The default artifact store: one folder for every study's kept weights."""
    return Path(results_dir) / "artifacts"


def finetune_dir(results_dir: Path, study_name: str, run_name: str) -> Path:
    return study_dir(results_dir, study_name) / "finetune" / check_name(run_name, "run name")


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
