"""bench.curves: one row per (config, fidelity); longer curves win, complete ones are final."""

from __future__ import annotations

import pytest

from bench.curves import CurveTable, CurveTableError, Fidelity, curve_key
from mnist_cnn.model import CNNConfig
from mnist_cnn.train import EpochRecord, TrainSettings

SETTINGS = TrainSettings(epochs=1, evaluations_per_epoch=2, seed=0)
FIDELITY = Fidelity.of(SETTINGS, train_size=1000, validation_size=200, data_dir=None,
                       device_kind="cpu")


def record(step: int, accuracy: float) -> EpochRecord:
    return EpochRecord(epoch=step / 2, train_loss=1.0, validation_loss=1.0,
                       validation_accuracy=accuracy, seconds=2.0 * step, images_per_second=500.0)


def test_key_depends_on_config_and_every_part_of_the_fidelity():
    config = CNNConfig(kernel_size=5)
    assert curve_key(config, FIDELITY) == curve_key(
        {**CNNConfig(kernel_size=5).__dict__, "channels": [32, 64]}, FIDELITY)
    assert curve_key(config, FIDELITY) != curve_key(CNNConfig(kernel_size=3), FIDELITY)
    other_seed = Fidelity.of(TrainSettings(epochs=1, evaluations_per_epoch=2, seed=1), 1000, 200,
                             None, "cpu")
    assert curve_key(config, FIDELITY) != curve_key(config, other_seed)
    assert curve_key(config, FIDELITY) != curve_key(
        config, Fidelity.of(SETTINGS, 1000, 200, None, "cuda"))
    assert FIDELITY.planned_evaluations == 2


def test_longer_curve_replaces_shorter_and_complete_is_final(tmp_path):
    table = CurveTable(tmp_path / "curves.db")
    config = CNNConfig()
    assert table.get(config, FIDELITY) is None
    assert table.put(config, FIDELITY, [record(1, 0.5)], complete=False, source="a#0")
    assert not table.put(config, FIDELITY, [record(1, 0.4)], complete=False, source="b#0")
    assert table.put(config, FIDELITY, [record(1, 0.5), record(2, 0.7)], complete=True,
                     measurements={"parameters": 10}, source="c#1")
    assert not table.put(config, FIDELITY, [record(1, 0.1), record(2, 0.2)], complete=True)

    stored = CurveTable(tmp_path / "curves.db").get(config, FIDELITY)  # read back from the file
    assert stored.complete and stored.source == "c#1"
    assert [r.validation_accuracy for r in stored.records] == [0.5, 0.7]
    assert stored.training_seconds == 6.0 and stored.best_validation_accuracy == 0.7
    assert stored.measurements == {"parameters": 10}
    frame = table.frame()
    assert len(frame) == 1 and frame.loc[0, "best_validation_accuracy"] == 0.7


def test_a_folder_or_foreign_file_is_refused_in_one_line(tmp_path):
    with pytest.raises(CurveTableError, match="not a file"):
        CurveTable(tmp_path)
    foreign = tmp_path / "notes.db"
    foreign.write_text("not a database " * 100)
    with pytest.raises(CurveTableError, match="cannot use"):
        CurveTable(foreign)
