"""The table of measured learning curves: one row per (config, fidelity, seed), replayed instead of
retrained.

Training a config under the same fidelity (train settings, data, subset size, device kind) and seed
gives the same curve, so a curve measured once can answer every later query of that config at its
recorded cost; other seeds of the same config are repeated measurements, and a replay draws one of
them, so that replayed values carry the measurement noise a real search would meet. That is what
tabular HPO benchmarks (NAS-Bench-201, HPOBench) do, and what lets `mnist-bench compare` run hundreds of studies in seconds. The table is a SQLite file
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
from typing import Any, Iterable, Iterator

import pandas as pd
import torch

from bench.store import legacy, schema
from bench.store.damage import check_curve_table
from bench.store.identity import Fidelity, canonical, measurement_keys
from mnist_cnn.model import CNNConfig
from mnist_cnn.train import EpochRecord, best_validation_accuracy

TIMEOUT_SECONDS = 60.0


class CurveTableError(ValueError):
    """The table file cannot be opened or is not a curve table."""


@dataclass(frozen=True)
class StoredCurve:
    """One row of the table: one measurement of a config at a fidelity with one seed."""

    config: dict[str, Any]
    fidelity: Fidelity
    seed: int
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
        return best_validation_accuracy(self.records)


def curve_value(curve: Iterable[dict[str, Any]]) -> float:
    """A row's curve (EpochRecord fields as dicts) valued as a search scores it: its best
    whole-split validation accuracy."""
    return best_validation_accuracy([EpochRecord(**record) for record in curve])


COLUMNS = "config, fidelity, seed, curve, complete, measurements, source"
# A whole row, for copying rows between tables and into reference files (bench.store.reference).
ROW_FIELDS = ("config, fidelity, seed, curve, complete, measurements, source, host, recorded_at, "
              "threads")
JSON_FIELDS = {"config", "fidelity", "curve", "measurements"}


class CurveTable:
    """The curve table in a SQLite file; created on first use."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_file():
            raise CurveTableError(f"curve table {self.path} is not a file")
        check_curve_table(self.path)  # a damaged table is refused before anything writes to it
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect(write=True) as connection:
                version = connection.execute("PRAGMA user_version").fetchone()[0]
                legacy.upgrade_curves(connection, version, schema.CURVES_SCHEMA_VERSION, _create,
                                      lambda config, fidelity, *rest: _put(
                                          connection, config, Fidelity.from_record(fidelity),
                                          *rest))
                _create(connection)
                version = connection.execute("PRAGMA user_version").fetchone()[0]
                if version != schema.CURVES_SCHEMA_VERSION:  # setting it again writes the file
                    connection.execute(f"PRAGMA user_version = {schema.CURVES_SCHEMA_VERSION}")
        except sqlite3.DatabaseError as error:
            raise CurveTableError(f"cannot use {self.path} as a curve table: {error}") from None
        except OSError as error:
            raise CurveTableError(f"cannot create curve table {self.path}: {error.strerror}") from None
        self._complete: dict[str, StoredCurve] = {}  # complete curves never change: cache them

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection that commits on success, rolls back on error, and is always closed.

        Writers take the lock up front (read-then-write with no writer in between); readers in
        WAL mode never wait for a writer.
        """
        connection = sqlite3.connect(self.path, timeout=TIMEOUT_SECONDS, isolation_level=None)
        try:
            if write:
                connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield connection
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        finally:
            connection.close()

    def get(self, config: CNNConfig | dict, fidelity: Fidelity, seed: int) -> StoredCurve | None:
        """The measurement of `config` at `fidelity` with `seed`, complete or partial."""
        key = _row_key(config, fidelity, seed)
        if key in self._complete:
            return self._complete[key]
        with self._connect() as connection:
            row = connection.execute(f"SELECT {COLUMNS} FROM curves WHERE key = ?",
                                     (key,)).fetchone()
        stored = _stored(row) if row else None
        if stored is not None and stored.complete:
            self._complete[key] = stored
        return stored

    def seeds(self, config: CNNConfig | dict, fidelity: Fidelity) -> dict[int, StoredCurve]:
        """Every complete measurement of `config` at `fidelity`, by seed."""
        with self._connect() as connection:
            rows = connection.execute(
                f"SELECT {COLUMNS} FROM curves WHERE config_key = ? AND complete = 1 "
                "ORDER BY seed", (_group_key(config, fidelity),)).fetchall()
        return {stored.seed: stored for stored in map(_stored, rows)}

    def put(self, config: CNNConfig | dict, fidelity: Fidelity, seed: int,
            records: list[EpochRecord], complete: bool, measurements: dict[str, Any] | None = None,
            source: str = "") -> bool:
        """Store a measured curve unless the table has a complete one, or (for a partial curve)
        one at least as long; True if stored.

        A complete curve is never replaced, so replays stay stable once the grid is filled.
        """
        if not records:
            return False
        config_dict = asdict(config) if isinstance(config, CNNConfig) else dict(config)
        with self._connect(write=True) as connection:
            return _put(connection, config_dict, fidelity, int(seed), [asdict(r) for r in records],
                        complete, measurements or {}, source, socket.gethostname(),
                        datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        torch.get_num_threads())

    def merge(self, other: "CurveTable") -> tuple[int, int]:
        """Add the rows of `other` (another machine's table) by the rules of `put`, in one
        transaction; returns (rows added or extended, rows this table already had).

        Rows are keyed by config, fidelity (with the data's digest and the device kind) and seed,
        so a merged row only ever answers the very measurement it is.
        """
        if other.path.resolve() == self.path.resolve():
            raise CurveTableError(f"cannot merge {self.path} into itself")
        return self.add_rows(other.rows())

    def rows(self) -> list[dict[str, Any]]:
        """Every row as plain JSON values, in the order recorded: what `add_rows` takes back."""
        with self._connect() as connection:
            rows = connection.execute(f"SELECT {ROW_FIELDS} FROM curves ORDER BY rowid").fetchall()
        names = [name.strip() for name in ROW_FIELDS.split(",")]
        return [{name: json.loads(value) if name in JSON_FIELDS else value
                 for name, value in zip(names, row)} for row in rows]

    def add_rows(self, rows: list[dict[str, Any]]) -> tuple[int, int]:
        """Add rows (from `rows` of another table, or a reference file) by the rules of `put`, in
        one transaction; returns (rows added or extended, rows this table already had)."""
        added = 0
        with self._connect(write=True) as connection:
            for row in rows:
                added += _put(connection, row["config"], Fidelity.from_record(row["fidelity"]),
                              int(row["seed"]), row["curve"], bool(row["complete"]),
                              row["measurements"], row["source"], row["host"], row["recorded_at"],
                              row.get("threads"))
        return added, len(rows) - added

    def curves(self, complete_only: bool = False) -> list[StoredCurve]:
        query = f"SELECT {COLUMNS} FROM curves"
        if complete_only:
            query += " WHERE complete = 1"
        with self._connect() as connection:
            return [_stored(row) for row in connection.execute(query + " ORDER BY rowid")]

    def load(self) -> dict[tuple[str, str], dict[int, StoredCurve]]:
        """Every complete curve, by (config key, fidelity key) (`measurement_keys`) and seed:
        read once, for callers that look up many configs."""
        table: dict[tuple[str, str], dict[int, StoredCurve]] = {}
        for stored in self.curves(complete_only=True):
            keys = measurement_keys(stored.config, stored.fidelity)
            table.setdefault(keys, {})[stored.seed] = stored
        return table

    def frame(self) -> pd.DataFrame:
        """One row per curve: config fields, fidelity, seed, best accuracy and cost."""
        rows = []
        for stored in self.curves():
            rows.append({**stored.config,
                         "epochs": stored.fidelity.train_settings.get("epochs"),
                         "train_size": stored.fidelity.train_size,
                         "seed": stored.seed,
                         "device_kind": stored.fidelity.device_kind,
                         "complete": stored.complete,
                         "evaluations": len(stored.records),
                         "best_validation_accuracy": stored.best_validation_accuracy,
                         "training_seconds": stored.training_seconds,
                         "source": stored.source})
        return pd.DataFrame(rows)


def _put(connection: sqlite3.Connection, config: dict, fidelity: Fidelity, seed: int,
         curve: list[dict], complete: bool, measurements: dict, source: str, host: str,
         recorded_at: str, threads: int | None) -> bool:
    """Insert unless the table has a complete curve, or (for a partial one) one as long."""
    key = _row_key(config, fidelity, seed)
    existing = connection.execute("SELECT curve, complete FROM curves WHERE key = ?",
                                  (key,)).fetchone()
    if existing and (existing[1] or (not complete and len(json.loads(existing[0])) >= len(curve))):
        return False
    _insert(connection, key, _group_key(config, fidelity), seed, canonical(config),
            asdict(fidelity), curve, complete, measurements, source, host, recorded_at, threads)
    return True


def _insert(connection: sqlite3.Connection, key: str, group_key: str, seed: int, config: dict,
            fidelity: dict, curve: list, complete: bool, measurements: dict, source: str,
            host: str, recorded_at: str, threads: int | None) -> None:
    connection.execute(
        "INSERT OR REPLACE INTO curves (key, config_key, seed, config, fidelity, curve, complete, "
        "measurements, source, host, recorded_at, threads) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (key, group_key, seed, json.dumps(config), json.dumps(fidelity), json.dumps(curve),
         int(complete), json.dumps(measurements), source, host, recorded_at, threads))


def _group_key(config: CNNConfig | dict, fidelity: Fidelity) -> str:
    """The `config_key` column: a hash of the config key and the fidelity key, the rows of one
    config's seeds at one fidelity."""
    return hashlib.sha256("\n".join(measurement_keys(config, fidelity)).encode()).hexdigest()


def _row_key(config: CNNConfig | dict, fidelity: Fidelity, seed: int) -> str:
    """The `key` column: config, fidelity and seed."""
    return hashlib.sha256(f"{_group_key(config, fidelity)}/{int(seed)}".encode()).hexdigest()


def _create(connection: sqlite3.Connection) -> None:
    for statement in schema.CURVES_SQL.split(";"):
        if statement.strip():
            connection.execute(statement)


def _stored(row: tuple) -> StoredCurve:
    config, fidelity, seed, curve, complete, measurements, source = row
    return StoredCurve(config=json.loads(config), fidelity=Fidelity.from_record(json.loads(fidelity)),
                       seed=int(seed), records=tuple(EpochRecord(**r) for r in json.loads(curve)),
                       complete=bool(complete), measurements=json.loads(measurements),
                       source=source)
