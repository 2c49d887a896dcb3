"""bench.store.reference: curve-table rows as diffable text with a manifest, merged back exactly."""

from __future__ import annotations

import json

from click.testing import CliRunner

from bench.cli import cli
from bench.store.curves import CurveTable
from bench.store.identity import Fidelity
from bench.store.reference import export_reference, manifest_path, read_reference
from mnist_cnn.model import CNNConfig
from mnist_cnn.train import EpochRecord, TrainSettings

FIDELITY = Fidelity.of(TrainSettings(epochs=1, evaluations_per_epoch=2), 1000, 200, None, "cpu", 0)


def record(step: int, accuracy: float) -> EpochRecord:
    return EpochRecord(epoch=step / 2, train_loss=1.0, validation_loss=1.0,
                       validation_accuracy=accuracy, seconds=1800.0, images_per_second=500.0)


def test_export_is_sorted_text_with_a_manifest_and_merges_back_row_for_row(tmp_path):
    table = CurveTable(tmp_path / "grid.db")
    for seed in (1, 0):
        for kernel in (5, 3):
            table.put(CNNConfig(kernel_size=kernel), FIDELITY, seed,
                      [record(1, 0.9), record(2, 0.95 + seed / 100)], complete=True,
                      measurements={"flops_per_image": kernel}, source=f"faq-grid#{kernel}")
    table.put(CNNConfig(fc_width=64), FIDELITY, 0, [record(1, 0.5)], complete=False)  # partial
    path = tmp_path / "reference" / "faq-cpu.jsonl"
    manifest = export_reference(table, path, {"command": "mnist-bench grid --seeds 2"})
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and manifest["rows"] == 4 and manifest["configs"] == 2
    assert manifest["seeds"] == [0, 1] and manifest["threads"] and manifest["training_hours"] == 4.0
    assert json.loads(manifest_path(path).read_text())["command"] == "mnist-bench grid --seeds 2"
    assert export_reference(table, tmp_path / "again.jsonl", {}) and \
        (tmp_path / "again.jsonl").read_text() == path.read_text()  # stable order: diffs cleanly
    fresh = CurveTable(tmp_path / "fresh.db")
    assert fresh.add_rows(read_reference(path)) == (4, 0)
    assert {k: v for k, v in fresh.rows()[0].items()} in table.rows()
    assert sorted(fresh.seeds(CNNConfig(kernel_size=3), FIDELITY)) == [0, 1]
    result = CliRunner().invoke(cli, ["merge-curves", str(path), "--into", str(tmp_path / "c.db")])
    assert result.exit_code == 0 and "4 curves added, 0 already in" in result.output
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{not json\n")
    result = CliRunner().invoke(cli, ["merge-curves", str(broken), "--into", str(tmp_path / "c.db")])
    assert result.exit_code == 2 and "cannot read reference table" in result.output


def test_the_shipped_faq_reference_rows_are_valid_faq_configs_at_the_default_fidelity():
    """results/reference/faq-cpu.jsonl: its manifest agrees with its rows, and every row is a valid
    grid point of the faq space at the search's default fidelity, on split 0: the key a search
    or compare on a fresh clone looks it up by."""
    from pathlib import Path

    from bench.benchmark.grid import valid_grid
    from bench.search.settings import SearchSettings
    from bench.search.spaces import load_space
    from bench.store.identity import config_key

    path = Path(__file__).resolve().parents[1] / "results" / "reference" / "faq-cpu.jsonl"
    rows = read_reference(path)
    manifest = json.loads(manifest_path(path).read_text())
    assert manifest["rows"] == len(rows) > 0 and manifest["threads"] == [1]
    assert {"machine", "torch", "optuna", "command", "status", "training_hours"} <= set(manifest)
    assert sorted({row["seed"] for row in rows}) == manifest["seeds"]
    settings = SearchSettings()
    valid = {config_key(config, Fidelity.of(train, 55_000, settings.validation_size, None, "cpu", 0))
             for _, config, train in valid_grid(load_space("faq"), settings)}
    assert len(valid) == 220
    keys = [config_key(row["config"], row["fidelity"]) for row in rows]
    assert set(keys) <= valid
    assert all(row["complete"] and len(row["curve"]) == 8 for row in rows)
