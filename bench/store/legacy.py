"""Everything recorded before the present schema, read in one place.

Older curve tables are moved to the present layout once, when a table is opened; older trial
records and curve rows are read through the functions here, so the rest of the code meets one
shape of each record. Each branch names what it reads and since when it is no longer written.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Callable

from bench.store import schema

# Training settings added after curves were first recorded, with the value every older curve had:
# left out of a fidelity at that value, so older rows still match.
ADDED_LATER = {"interim_validation_size": None, "precision": None}


def fidelity_fields(record: dict[str, Any]) -> dict[str, Any]:
    """A fidelity record's fields; one recorded before the split was kept (curve schema version
    2) has split_seed None, which no query matches."""
    return {"split_seed": None, **record}


def rebuilt_fidelity(train_settings: dict[str, Any],
                     search_settings: dict[str, Any]) -> dict[str, Any]:
    """The fidelity of a trial recorded before trials kept theirs: the same fields rebuilt from
    its train settings and its study's search settings."""
    return {"train_settings": train_settings, "train_size": search_settings.get("train_size"),
            "validation_size": search_settings.get("validation_size"),
            "data": search_settings.get("data_dir") or "shipped",
            "device_kind": search_settings.get("device") or "unrecorded"}


def recorded_seed(user_attrs: dict[str, Any]) -> int | None:
    """The training seed behind a trial's value: its seed attr, or for a trial recorded before
    that attr was (its value never replayed), the seed of its train settings."""
    seed = user_attrs.get(schema.ATTR_SEED)
    if seed is None:
        seed = (user_attrs.get(schema.ATTR_TRAIN_SETTINGS) or {}).get("seed")
    return seed


# A row as `upgrade_curves` hands it on: config, fidelity, seed, curve, complete, measurements,
# source, host, recorded_at, threads (JSON fields decoded).
Put = Callable[[dict, dict, int, list, bool, dict, str, str, str, "int | None"], Any]


def upgrade_curves(connection: sqlite3.Connection, version: int, present: int,
                   create: Callable[[sqlite3.Connection], None], put: Put) -> None:
    """Move a curve table written by an older layout to the present one (`present`), in the
    caller's transaction: every row is read, fixed and put again under the present keys.

    Version 1 kept the seed inside the fidelity; version 2 had no split seed in the fidelity and
    no thread count (a search's or grid's row was scored on the split of its own seed; a
    confirm's on its study's split, which the row does not say, so it keeps split_seed None and is
    never replayed again); version 3 keyed rows by the network and the whole fidelity, before one
    config key and one fidelity key served the curve table and the evidence alike. A table that
    code of version 3 opened again is marked 3 and re-keyed the same way: keys follow from each
    row's content, so doing it twice changes nothing.
    """
    columns = [row[1] for row in connection.execute("PRAGMA table_info(curves)")]
    if not columns or version >= present:
        return
    seed_column = "seed" if "seed" in columns else "NULL"
    threads_column = "threads" if "threads" in columns else "NULL"
    rows = connection.execute(
        f"SELECT config, fidelity, {seed_column}, curve, complete, measurements, source, host, "
        f"recorded_at, {threads_column} FROM curves ORDER BY rowid").fetchall()
    connection.execute("DROP TABLE curves")
    create(connection)
    for config, fidelity, seed, curve, complete, measurements, source, host, recorded_at, \
            threads in rows:
        fidelity_dict = json.loads(fidelity)
        if seed is None:  # version 1: the seed inside the fidelity
            seed = int(fidelity_dict["train_settings"].pop("seed", 0))
        if "split_seed" not in fidelity_dict:  # version 2: no split seed
            study = source.rsplit("#", 1)[0]
            fidelity_dict["split_seed"] = None if study.endswith("-confirm") else int(seed)
        put(json.loads(config), fidelity_dict, int(seed), json.loads(curve), bool(complete),
            json.loads(measurements), source, host, recorded_at, threads)
