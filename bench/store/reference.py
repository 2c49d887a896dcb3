"""Reference tables: curve-table rows as a text file that diffs (JSON Lines, one row a line, in a
stable order) with a manifest of its provenance, so a measured grid can ship in results/ and be
merged into any machine's curve table (`mnist-bench merge-curves FILE.jsonl`).
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from bench.store.curves import CurveTable
from bench.store.identity import config_key

SUFFIX = ".jsonl"
MANIFEST_SUFFIX = ".manifest.json"


class ReferenceError(ValueError):
    """A reference file that cannot be read: one line of bad input."""


def export_reference(table: CurveTable, path: Path, provenance: dict[str, Any]) -> dict[str, Any]:
    """Write the table's complete rows to `path` (sorted by config key and seed, one JSON object
    a line) and a manifest beside it; returns the manifest."""
    rows = [row for row in table.rows() if row["complete"]]
    rows.sort(key=lambda row: (config_key(row["config"], row["fidelity"]), row["seed"]))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, sort_keys=True, separators=(",", ":")) + "\n")
    configs = {config_key(row["config"], row["fidelity"]) for row in rows}
    manifest = {
        "rows": len(rows), "configs": len(configs),
        "seeds": sorted({row["seed"] for row in rows}),
        "threads": sorted({row["threads"] for row in rows if row.get("threads") is not None}),
        "hosts": sorted({row["host"] for row in rows}),
        "recorded": [min((r["recorded_at"] for r in rows), default=None),
                     max((r["recorded_at"] for r in rows), default=None)],
        "training_hours": round(sum(record["seconds"] for row in rows for record in row["curve"])
                                / 3600, 2),
        "python": platform.python_version(),
        **provenance,
    }
    manifest_path(path).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n",
                                   encoding="utf-8")
    return manifest


def manifest_path(path: Path) -> Path:
    return Path(path).with_suffix(MANIFEST_SUFFIX)


def read_reference(path: Path) -> list[dict[str, Any]]:
    """The rows of a reference file, as `CurveTable.add_rows` takes them."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    except (OSError, json.JSONDecodeError) as error:
        raise ReferenceError(f"cannot read reference table {path}: {error}") from None
