"""The table of measured learning curves: one row per (config, fidelity), replayed instead of retrained.

Training a config under the same fidelity (train settings with their seed, data, subset size,
device kind) gives the same curve, so a curve measured once can answer every later trial of that
config at its recorded cost. That is what tabular HPO benchmarks (NAS-Bench-201, HPOBench) do, and
what lets `mnist-bench compare` run hundreds of studies in seconds. The table is a SQLite file
(stdlib sqlite3, WAL mode), so concurrent workers of one machine can add to it safely.
"""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from mnist_cnn.model import CNNConfig
from mnist_cnn.train import EpochRecord, TrainSettings

SCHEMA = """
CREATE TABLE IF NOT EXISTS curves (
    key TEXT PRIMARY KEY,        -- sha256 of the canonical JSON of config and fidelity
    config TEXT NOT NULL,        -- JSON of dataclasses.asdict(CNNConfig)
    fidelity TEXT NOT NULL,      -- JSON of Fidelity
    curve TEXT NOT NULL,         -- JSON list of dataclasses.asdict(EpochRecord)
    complete INTEGER NOT NULL,   -- 1 when the curve has every planned evaluation
    measurements TEXT NOT NULL,  -- JSON: parameters, FLOPs, speed (complete curves)
    source TEXT NOT NULL,        -- study and trial that measured it
    host TEXT NOT NULL,
    recorded_at TEXT NOT NULL
)
"""
TIMEOUT_SECONDS = 60.0


class CurveTableError(ValueError):
    """The table file cannot be opened or is not a curve table."""


@dataclass(frozen=True)
class Fidelity:
    """Everything a learning curve depends on besides the network: same Fidelity, same curve."""

    train_settings: dict[str, Any]  # dataclasses.asdict(TrainSettings): epochs, seed, lr, ...
    train_size: int  # images trained on per epoch
    validation_size: int
    data: str  # "shipped" or the resolved --data-dir
    device_kind: str  # "cpu" or "cuda": speed (and rounding) differ

    @classmethod
    def of(cls, settings: TrainSettings, train_size: int, validation_size: int,
           data_dir: Path | str | None, device_kind: str) -> "Fidelity":
        data = str(Path(data_dir).resolve()) if data_dir else "shipped"
        return cls(asdict(settings), int(train_size), int(validation_size), data, device_kind)

    @property
    def planned_evaluations(self) -> int:
        return int(self.train_settings["epochs"]) * int(self.train_settings["evaluations_per_epoch"])


@dataclass(frozen=True)
class StoredCurve:
    """One row of the table."""

    config: dict[str, Any]
    fidelity: Fidelity
    records: tuple[EpochRecord, ...]
    complete: bool
    measurements: dict[str, Any]
    source: str

    @property
    def training_seconds(self) -> float:
        """The recorded cost: training time summed over the curve (evaluations not included)."""
        return sum(r.seconds for r in self.records)

    @property
    def best_validation_accuracy(self) -> float:
        return max((r.validation_accuracy for r in self.records), default=0.0)


def curve_key(config: CNNConfig | dict, fidelity: Fidelity) -> str:
    """The row key: a hash of the canonical JSON of both halves."""
    config_dict = asdict(config) if isinstance(config, CNNConfig) else dict(config)
    text = json.dumps({"config": _canonical(config_dict), "fidelity": _canonical(asdict(fidelity))},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical(value: Any) -> Any:
    """What JSON gives back: tuples as lists, so a stored key matches a fresh one."""
    return json.loads(json.dumps(value, sort_keys=True))


class CurveTable:
    """The curve table in a SQLite file; created on first use."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_file():
            raise CurveTableError(f"curve table {self.path} is not a file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as connection:
                connection.execute(SCHEMA)
        except sqlite3.DatabaseError as error:
            raise CurveTableError(f"cannot use {self.path} as a curve table: {error}") from None
        except OSError as error:
            raise CurveTableError(f"cannot create curve table {self.path}: {error.strerror}") from None
        self._complete: dict[str, StoredCurve] = {}  # complete curves never change: cache them

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection that commits on success, rolls back on error, and is always closed."""
        connection = sqlite3.connect(self.path, timeout=TIMEOUT_SECONDS, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("BEGIN IMMEDIATE")  # read-then-write with no writer in between
            yield connection
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        finally:
            connection.close()

    def get(self, config: CNNConfig | dict, fidelity: Fidelity) -> StoredCurve | None:
        key = curve_key(config, fidelity)
        if key in self._complete:
            return self._complete[key]
        with self._connect() as connection:
            row = connection.execute(
                "SELECT config, fidelity, curve, complete, measurements, source FROM curves "
                "WHERE key = ?", (key,)).fetchone()
        stored = _stored(row) if row else None
        if stored is not None and stored.complete:
            self._complete[key] = stored
        return stored

    def put(self, config: CNNConfig | dict, fidelity: Fidelity, records: list[EpochRecord],
            complete: bool, measurements: dict[str, Any] | None = None, source: str = "") -> bool:
        """Store a measured curve unless the table has a complete one, or (for a partial curve)
        one at least as long; True if stored.

        A complete curve is never replaced, so replays stay stable once the grid is filled.
        """
        if not records:
            return False
        config_dict = asdict(config) if isinstance(config, CNNConfig) else dict(config)
        key = curve_key(config_dict, fidelity)
        with self._connect() as connection:
            existing = connection.execute("SELECT curve, complete FROM curves WHERE key = ?",
                                          (key,)).fetchone()
            if existing and (existing[1] or (not complete
                                             and len(json.loads(existing[0])) >= len(records))):
                return False
            connection.execute(
                "INSERT OR REPLACE INTO curves VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, json.dumps(_canonical(config_dict)), json.dumps(asdict(fidelity)),
                 json.dumps([asdict(r) for r in records]), int(complete),
                 json.dumps(measurements or {}), source, socket.gethostname(),
                 datetime.now(timezone.utc).isoformat(timespec="seconds")))
        return True

    def curves(self, complete_only: bool = False) -> list[StoredCurve]:
        query = "SELECT config, fidelity, curve, complete, measurements, source FROM curves"
        if complete_only:
            query += " WHERE complete = 1"
        with self._connect() as connection:
            return [_stored(row) for row in connection.execute(query + " ORDER BY rowid")]

    def load(self) -> dict[str, StoredCurve]:
        """Every complete curve by key: read once, for callers that replay many trials."""
        return {curve_key(c.config, c.fidelity): c for c in self.curves(complete_only=True)}

    def frame(self) -> pd.DataFrame:
        """One row per curve: config fields, fidelity, best accuracy and cost."""
        rows = []
        for stored in self.curves():
            rows.append({**stored.config,
                         "epochs": stored.fidelity.train_settings.get("epochs"),
                         "train_size": stored.fidelity.train_size,
                         "seed": stored.fidelity.train_settings.get("seed"),
                         "device_kind": stored.fidelity.device_kind,
                         "complete": stored.complete,
                         "evaluations": len(stored.records),
                         "best_validation_accuracy": stored.best_validation_accuracy,
                         "training_seconds": stored.training_seconds,
                         "source": stored.source})
        return pd.DataFrame(rows)


def _stored(row: tuple) -> StoredCurve:
    config, fidelity, curve, complete, measurements, source = row
    return StoredCurve(config=json.loads(config), fidelity=Fidelity(**json.loads(fidelity)),
                       records=tuple(EpochRecord(**r) for r in json.loads(curve)),
                       complete=bool(complete), measurements=json.loads(measurements),
                       source=source)
