"""Reference tables: curve-table rows as a text file that diffs (JSON Lines, one row a line, in a
stable order) with a manifest of its provenance, so a measured grid can ship in results/ and be
merged into any machine's curve table (`mnist-bench merge-curves FILE.jsonl`).
"""

from __future__ import annotations

import json
import platform
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from bench.store import layout
from bench.store.curves import CurveTable
from bench.store.identity import measurement_keys

SUFFIX = ".jsonl"
MANIFEST_SUFFIX = ".manifest.json"


class ReferenceTableError(ValueError):
    """A reference file that cannot be read: one line of bad input."""


def export_reference(table: CurveTable, path: Path, provenance: dict[str, Any]) -> dict[str, Any]:
    """Write the table's complete rows to `path` (sorted by fidelity key, config key and seed,
    one JSON object a line) and a manifest beside it; returns the manifest."""
    rows = [row for row in table.rows() if row["complete"]]
    rows.sort(key=lambda row: (*reversed(measurement_keys(row["config"], row["fidelity"])),
                               row["seed"]))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, sort_keys=True, separators=(",", ":")) + "\n")
    configs = {measurement_keys(row["config"], row["fidelity"]) for row in rows}
    manifest = {
        "rows": len(rows), "configs": len(configs),
        "seeds": sorted({row["seed"] for row in rows}),
        "rows_per_seed": {str(seed): count for seed, count
                          in sorted(Counter(row["seed"] for row in rows).items())},
        "threads": sorted({row["threads"] for row in rows if row.get("threads") is not None}),
        "hosts": sorted({row["host"] for row in rows}),
        "recorded": [min((r["recorded_at"] for r in rows), default=None),
                     max((r["recorded_at"] for r in rows), default=None)],
        "training_hours": round(sum(record["seconds"] for row in rows for record in row["curve"])
                                / 3600, 2),
        "python": platform.python_version(),
        "cpu": cpu_fingerprint(),
        **provenance,
    }
    manifest_path(path).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n",
                                   encoding="utf-8")
    return manifest


def merge_shipped(results_dir: Path, table: CurveTable) -> list[str]:
    """Add the reference tables a clone ships under <results_dir>/reference to `table` (rows
    it has are left as they are), so a fresh clone replays them; a note for each that added."""
    notes = []
    for path in layout.reference_tables(results_dir):
        added, known = table.add_rows(read_reference(path))
        if added:
            notes.append(f"added {added} curves of the reference table {path} to {table.path} "
                         f"({known} were there)")
    return notes


def manifest_path(path: Path) -> Path:
    return Path(path).with_suffix(MANIFEST_SUFFIX)


def reference_picks(path: Path) -> dict[str, dict[str, Any]]:
    """The networks a reference table's manifest names as picked elsewhere, label -> network
    (e.g. what the default search picked at one epoch), so the report can give their regret at
    the table's budget; none when the manifest has no `picks` or cannot be read."""
    try:
        manifest = json.loads(manifest_path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return dict(manifest.get("picks") or {})


def read_reference(path: Path) -> list[dict[str, Any]]:
    """The rows of a reference file, as `CurveTable.add_rows` takes them."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    except (OSError, json.JSONDecodeError) as error:
        raise ReferenceTableError(f"cannot read reference table {path}: {error}") from None


# CPU flags that decide which vector kernels oneDNN and ATen run (and so how sums are rounded).
KERNEL_FLAGS = ("avx", "amx", "fma", "f16c", "sse4")


def cpu_fingerprint() -> dict[str, Any]:
    """What decides a CPU run's rounding besides the code and the thread count: the CPU model,
    its vector features and cache (oneDNN picks kernels and blocking by them) and the kernels
    torch dispatches to. Two machines with equal fingerprints should train bitwise alike."""
    info = _first_cpuinfo_block()
    return {"model": info.get("model name") or platform.processor() or platform.machine(),
            "cache": info.get("cache size"),
            "features": sorted(flag for flag in info.get("flags", "").split()
                               if flag.startswith(KERNEL_FLAGS)),
            "torch_capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__}


def _first_cpuinfo_block() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none: not Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    fields = {}
    for line in text.split("\n\n")[0].splitlines():
        name, _, value = line.partition(":")
        fields[name.strip()] = value.strip()
    return fields
