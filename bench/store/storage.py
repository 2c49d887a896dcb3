"""Opening an Optuna storage: the URL a study lives at, heartbeats, and retries of dead workers.

Reading a study (report, confirm, finetune) and running one (search) open storages the same way,
so this module knows nothing of the search. A worker that dies leaves its trial RUNNING; Optuna's
heartbeat fails it after the grace period and `RetryAfresh` runs it again.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import optuna
from optuna.storages.journal import JournalFileBackend
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from bench.store import layout
from bench.store.damage import (STUDY_ADVICE, STUDY_TABLES, check_sqlite_file, error_line,
                                journal_damage)

STORAGE_ATTEMPTS = 4
MAX_RETRY = 2  # a trial whose worker dies is run again at most this many times, then replaced
HEARTBEAT_INTERVAL = 20  # seconds between a running trial's heartbeats
GRACE_PERIOD = 60  # seconds without a heartbeat before a trial is failed and retried


class StorageError(ValueError):
    """The storage URL cannot be opened; the message hides any password."""


def storage_url(storage: str | None, results_dir: Path, study_name: str) -> str:
    """The given URL (postgresql:// meaning the psycopg 3 driver), else SQLite in results."""
    if storage and storage.startswith("postgresql://"):
        return "postgresql+psycopg://" + storage[len("postgresql://"):]
    return storage or layout.sqlite_url(results_dir, study_name)


def open_storage(url: str, heartbeat_interval: int = HEARTBEAT_INTERVAL,
                 grace_period: int = GRACE_PERIOD) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage with heartbeats: a killed worker's trial turns FAIL and is retried.
    A SQLite file that is there is checked whole first: a damaged one is refused, untouched."""
    if url.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        check_sqlite_file(make_url(url).database or "", "study database", STUDY_ADVICE,
                          STUDY_TABLES)
    for attempt in range(STORAGE_ATTEMPTS):
        try:
            return _rdb_storage(url, heartbeat_interval, grace_period)
        except Exception as error:  # driver errors vary widely; all mean "cannot open"
            if not _lost_table_race(error):
                raise StorageError(f"cannot open storage {hidden_url(url)}: "
                                   f"{error_line(error)}") from None
            # Workers or machines starting together on a fresh database race to create
            # Optuna's tables; the loser finds them made on the next attempt.
            if attempt == STORAGE_ATTEMPTS - 1:
                raise StorageError(f"cannot create Optuna's tables in {hidden_url(url)}") from None
            time.sleep(1.0 + attempt)
    raise AssertionError("unreachable")


def _lost_table_race(error: Exception) -> bool:
    """Whether opening failed because another process created Optuna's tables at the same moment:
    PostgreSQL says so as an integrity or programming error, SQLite as "table ... already exists"
    (two `grid` processes started together on a new study, 2026-12-07)."""
    return (isinstance(error, (IntegrityError, ProgrammingError))
            or (isinstance(error, OperationalError) and "already exists" in str(error)))


def open_journal(path: Path) -> optuna.storages.JournalStorage:
    """Optuna's journal storage in one append-only file: `add_trials` of a finished study costs
    about 1.5 ms a trial there against 30-80 ms in SQLite (docs/measurements.md), which is what
    `compare`, writing hundreds of replayed studies, spends its time on."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    except ValueError as error:  # a line that is not JSON (or text): Optuna cannot replay it
        raise journal_damage(path, error) from None
    except OSError as error:
        raise StorageError(f"cannot open journal {path}: {error.strerror}") from None


def _rdb_storage(url: str, heartbeat_interval: int,
                 grace_period: int) -> optuna.storages.RDBStorage:
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=RetryAfresh(max_retry=MAX_RETRY),
        )
    if url.startswith("sqlite"):
        # Write-ahead logging: readers (a report, a dashboard, other workers) never block
        # a worker's writes. The mode is stored in the database file, so once is enough.
        with storage.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    return storage


class RetryAfresh(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry (same params, at most max_retry times, history in system attrs) without the
    dead run's user attrs: its worker, curve and weights belong to the trial that failed."""

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        fresh = copy.deepcopy(trial)
        fresh.user_attrs = {}
        super().__call__(study, fresh)


def hidden_url(url: str) -> str:
    """The URL with its password masked, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def settings_record(settings: Any) -> dict[str, Any]:
    """A settings dataclass as JSON-ready values for a study's or run's record: paths as text,
    a storage URL with its password masked."""
    record = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()}
    if record.get("storage"):
        record["storage"] = hidden_url(record["storage"])
    return record
