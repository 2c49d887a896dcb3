"""bench.store.curves: one row per (config, fidelity, seed); longer curves win, complete ones are final."""

from __future__ import annotations

import json
import sqlite3

import pytest

from bench.store.curves import CurveTable, CurveTableError
from bench.store.damage import DamagedFile
from bench.store.identity import Fidelity, config_key, config_of, fidelity_key, measurement_keys
from mnist_cnn.model import CNNConfig
from mnist_cnn.train import EpochRecord, TrainSettings

SETTINGS = TrainSettings(epochs=1, evaluations_per_epoch=2, seed=0)
FIDELITY = Fidelity.of(SETTINGS, train_size=1000, validation_size=200, data_dir=None,
                       device_kind="cpu", split_seed=0)


def record(step: int, accuracy: float) -> EpochRecord:
    return EpochRecord(epoch=step / 2, train_loss=1.0, validation_loss=1.0,
                       validation_accuracy=accuracy, seconds=2.0 * step, images_per_second=500.0)


def curve_key(config, fidelity, seed):
    """What a curve row is filed under: its config key, fidelity key and seed."""
    return (*measurement_keys(config, fidelity), seed)


def test_key_depends_on_config_seed_and_every_part_of_the_fidelity():
    config = CNNConfig(kernel_size=5)
    as_stored = {**CNNConfig(kernel_size=5).__dict__, "channels": [32, 64]}
    assert curve_key(config, FIDELITY, 0) == curve_key(as_stored, FIDELITY, 0)
    assert curve_key(config, FIDELITY, 0) != curve_key(CNNConfig(kernel_size=3), FIDELITY, 0)
    assert curve_key(config, FIDELITY, 0) != curve_key(config, FIDELITY, 1)
    # The seed is not part of the fidelity: seeds of one config share a config key.
    other_seed = Fidelity.of(TrainSettings(epochs=1, evaluations_per_epoch=2, seed=1), 1000, 200,
                             None, "cpu", 0)
    assert other_seed == FIDELITY and "seed" not in FIDELITY.train_settings
    on_cuda = Fidelity.of(SETTINGS, 1000, 200, None, "cuda", 0)
    assert curve_key(config, FIDELITY, 0) != curve_key(config, on_cuda, 0)
    assert FIDELITY.planned_evaluations == 2
    # The split is: a search with --seed 1 scores on another validation split.
    other_split = Fidelity.of(SETTINGS, 1000, 200, None, "cpu", 1)
    assert curve_key(config, FIDELITY, 1) != curve_key(config, other_split, 1)


def test_training_knobs_key_the_config_and_the_rest_keys_the_fidelity():
    """A learning rate is part of what a config is; epochs are part of what it was measured at.
    The curve table and the evidence file a measurement under the same two keys."""
    faster = Fidelity.of(TrainSettings(epochs=1, evaluations_per_epoch=2, learning_rate=0.01),
                         1000, 200, None, "cpu", 0)
    longer = Fidelity.of(TrainSettings(epochs=2, evaluations_per_epoch=2), 1000, 200, None,
                         "cpu", 0)
    base, lr, epochs = (measurement_keys(CNNConfig(), f) for f in (FIDELITY, faster, longer))
    assert lr.fidelity == base.fidelity and lr.config != base.config
    assert epochs.config == base.config and epochs.fidelity != base.fidelity
    assert base.config == config_key(config_of(CNNConfig(), SETTINGS.__dict__))
    assert base.fidelity == fidelity_key(FIDELITY.record()) == fidelity_key(FIDELITY)
    assert json.loads(base.config)["training"]["learning_rate"] == SETTINGS.learning_rate


def test_a_trial_and_its_curve_row_are_filed_under_the_same_keys(tmp_path):
    """The evidence's row of a trial and the curve table's row of its curve: one identity."""
    from dataclasses import asdict

    import optuna

    from bench.evidence.measurements import measurements
    from bench.store import schema

    settings = TrainSettings(epochs=1, evaluations_per_epoch=2, learning_rate=0.01, seed=3)
    fidelity = Fidelity.of(settings, 1000, 200, None, "cpu", 0)
    curve = [record(1, 0.5), record(2, 0.8)]
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=0.8, user_attrs={
        schema.ATTR_CONFIG: json.loads(json.dumps(asdict(CNNConfig()))),
        schema.ATTR_TRAIN_SETTINGS: asdict(settings), schema.ATTR_FIDELITY: fidelity.record(),
        schema.ATTR_SEED: 3, schema.ATTR_LEARNING_CURVE: [asdict(r) for r in curve]}))
    (row,) = measurements([study]).to_dict("records")
    table = CurveTable(tmp_path / "curves.db")
    table.put(CNNConfig(), fidelity, 3, curve, complete=True)
    assert list(table.load()) == [(row["config_key"], row["fidelity_key"])]


def test_interim_subset_is_part_of_the_fidelity_and_older_curves_still_match():
    whole_split = Fidelity.of(TrainSettings(epochs=1, evaluations_per_epoch=2,
                                            interim_validation_size=None), 1000, 200, None, "cpu", 0)
    assert "interim_validation_size" not in whole_split.train_settings  # as recorded before it
    assert whole_split == FIDELITY
    subset = Fidelity.of(TrainSettings(epochs=1, evaluations_per_epoch=2,
                                       interim_validation_size=50), 1000, 200, None, "cpu", 0)
    assert subset.train_settings["interim_validation_size"] == 50
    assert curve_key(CNNConfig(), subset, 0) != curve_key(CNNConfig(), FIDELITY, 0)


def test_precision_is_part_of_the_fidelity_only_where_it_is_not_the_devices_default():
    def fidelity(precision, device_kind="cpu"):
        return Fidelity.of(TrainSettings(epochs=1, evaluations_per_epoch=2, precision=precision),
                           1000, 200, None, device_kind, 0)

    assert fidelity(None) == fidelity("fp32") == FIDELITY  # as recorded before the setting
    assert "precision" not in FIDELITY.train_settings
    assert fidelity("bf16").train_settings["precision"] == "bf16"
    assert curve_key(CNNConfig(), fidelity("bf16"), 0) != curve_key(CNNConfig(), FIDELITY, 0)
    assert fidelity(None, "cuda") == fidelity("bf16", "cuda") != fidelity("fp32", "cuda")


def test_longer_curve_replaces_shorter_and_complete_is_final(tmp_path):
    table = CurveTable(tmp_path / "curves.db")
    config = CNNConfig()
    assert table.get(config, FIDELITY, 0) is None
    assert table.put(config, FIDELITY, 0, [record(1, 0.5)], complete=False, source="a#0")
    assert not table.put(config, FIDELITY, 0, [record(1, 0.4)], complete=False, source="b#0")
    assert table.seeds(config, FIDELITY) == {}  # partial curves are no measurement yet
    assert table.put(config, FIDELITY, 0, [record(1, 0.5), record(2, 0.7)], complete=True,
                     measurements={"parameters": 10}, source="c#1")
    assert not table.put(config, FIDELITY, 0, [record(1, 0.1), record(2, 0.2)], complete=True)

    stored = CurveTable(tmp_path / "curves.db").get(config, FIDELITY, 0)  # read back from the file
    assert stored.complete and stored.source == "c#1" and stored.seed == 0
    assert [r.validation_accuracy for r in stored.records] == [0.5, 0.7]
    assert stored.training_seconds == 6.0 and stored.best_validation_accuracy == 0.7
    assert stored.measurements == {"parameters": 10}
    frame = table.frame()
    assert len(frame) == 1 and frame.loc[0, "best_validation_accuracy"] == 0.7


def test_seeds_are_separate_rows_of_one_config(tmp_path):
    table = CurveTable(tmp_path / "curves.db")
    config = CNNConfig()
    for seed, accuracy in ((0, 0.7), (2, 0.72), (1, 0.69)):
        assert table.put(config, FIDELITY, seed, [record(1, 0.5), record(2, accuracy)],
                         complete=True, source=f"s#{seed}")
    table.put(CNNConfig(kernel_size=5), FIDELITY, 0, [record(1, 0.5), record(2, 0.9)],
              complete=True)
    seeds = table.seeds(config, FIDELITY)
    assert sorted(seeds) == [0, 1, 2]
    assert [seeds[s].best_validation_accuracy for s in (0, 1, 2)] == [0.7, 0.69, 0.72]
    loaded = table.load()
    assert sorted(loaded[measurement_keys(config, FIDELITY)]) == [0, 1, 2]
    assert sorted(table.frame()["seed"]) == [0, 0, 1, 2]


def test_a_version_1_table_is_moved_to_seed_rows(tmp_path):
    """Tables written before seeds were rows keep their curves, under the seed they were run with."""
    path = tmp_path / "curves.db"
    old_fidelity = {"train_settings": {**FIDELITY.train_settings, "seed": 3}, "train_size": 1000,
                    "validation_size": 200, "data": "shipped", "device_kind": "cpu"}
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE curves (key TEXT PRIMARY KEY, config TEXT NOT NULL, "
                           "fidelity TEXT NOT NULL, curve TEXT NOT NULL, complete INTEGER NOT NULL, "
                           "measurements TEXT NOT NULL, source TEXT NOT NULL, host TEXT NOT NULL, "
                           "recorded_at TEXT NOT NULL)")
        connection.execute("INSERT INTO curves VALUES ('old', ?, ?, ?, 1, '{}', 'grid#4', 'h', 't')",
                           (json.dumps(CNNConfig().__dict__ | {"channels": [32, 64]}),
                            json.dumps(old_fidelity),
                            json.dumps([record(1, 0.5).__dict__, record(2, 0.8).__dict__])))
    table = CurveTable(path)
    own_split = Fidelity.of(SETTINGS, 1000, 200, None, "cpu", 3)  # a grid scores on its seed's split
    stored = table.get(CNNConfig(), own_split, 3)
    assert stored is not None and stored.source == "grid#4" and stored.complete
    assert stored.best_validation_accuracy == 0.8
    assert sorted(table.seeds(CNNConfig(), own_split)) == [3]
    assert table.get(CNNConfig(), FIDELITY, 3) is None


def test_a_version_2_table_gets_the_split_and_drops_confirm_rows_from_replay(tmp_path):
    """Before the split was in the fidelity: a search's row was on its own seed's split; a
    confirm's row on its study's split, which it does not say, so it never answers again."""
    path = tmp_path / "curves.db"
    old_fidelity = {key: value for key, value in FIDELITY.record().items() if key != "split_seed"}
    curve = json.dumps([record(1, 0.5).__dict__, record(2, 0.8).__dict__])
    config = json.dumps(CNNConfig().__dict__ | {"channels": [32, 64]})
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE curves (key TEXT PRIMARY KEY, config_key TEXT NOT NULL, "
                           "seed INTEGER NOT NULL, config TEXT NOT NULL, fidelity TEXT NOT NULL, "
                           "curve TEXT NOT NULL, complete INTEGER NOT NULL, measurements TEXT NOT "
                           "NULL, source TEXT NOT NULL, host TEXT NOT NULL, recorded_at TEXT NOT NULL)")
        for key, seed, source in (("a", 1, "faq-tpe-hyperband#3"), ("b", 2, "faq-tpe-hyperband-confirm#0")):
            connection.execute("INSERT INTO curves VALUES (?, 'k', ?, ?, ?, ?, 1, '{}', ?, 'h', 't')",
                               (key, seed, config, json.dumps(old_fidelity), curve, source))
    table = CurveTable(path)
    assert table.get(CNNConfig(), Fidelity.of(SETTINGS, 1000, 200, None, "cpu", 1), 1) is not None
    assert table.get(CNNConfig(), FIDELITY, 1) is None
    assert table.get(CNNConfig(), FIDELITY, 2) is None  # the confirm's row: split unknown
    kept = {stored.source: stored.fidelity.split_seed for stored in table.curves()}
    assert kept == {"faq-tpe-hyperband#3": 1, "faq-tpe-hyperband-confirm#0": None}
    table.put(CNNConfig(), FIDELITY, 0, [record(1, 0.5)], complete=False, source="new#0")
    with sqlite3.connect(path) as connection:
        threads = dict(connection.execute("SELECT source, threads FROM curves"))
    assert threads["new#0"] >= 1 and threads["faq-tpe-hyperband#3"] is None


def test_a_version_3_table_is_filed_under_the_present_keys_once_and_again(tmp_path):
    """Version 3 keyed a row by a hash of the network and the whole fidelity; opening the table
    files every row under the config and fidelity keys. Code of version 3 that opens it again
    marks it 3 and may add a row under its old key: the next opening re-files it, keeping one
    row per measurement (the complete one)."""
    path = tmp_path / "curves.db"
    CurveTable(path)  # the present layout
    curve = [record(1, 0.5).__dict__, record(2, 0.8).__dict__]
    config = json.dumps(CNNConfig().__dict__ | {"channels": [32, 64]})

    def add_as_version_3(key, curve, complete, source):
        with sqlite3.connect(path) as connection:
            connection.execute(
                "INSERT INTO curves VALUES (?, 'old', 0, ?, ?, ?, ?, '{}', ?, 'h', 't', 1)",
                (key, config, json.dumps(FIDELITY.record()), json.dumps(curve), complete, source))
            connection.execute("PRAGMA user_version = 3")

    add_as_version_3("old-key-a", curve, 1, "grid#0")
    stored = CurveTable(path).get(CNNConfig(), FIDELITY, 0)
    assert stored is not None and stored.source == "grid#0" and stored.complete
    add_as_version_3("old-key-b", curve[:1], 0, "search#5")  # the same measurement, partial
    table = CurveTable(path)
    assert [(s.source, s.complete) for s in table.curves()] == [("grid#0", True)]
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 4


def test_a_folder_or_foreign_file_is_refused_in_one_line(tmp_path):
    with pytest.raises(CurveTableError, match="not a file"):
        CurveTable(tmp_path)
    foreign = tmp_path / "notes.db"
    foreign.write_text("not a database " * 100)
    with pytest.raises(DamagedFile, match="notes.db is not a curve table"):
        CurveTable(foreign)


def test_data_is_identified_by_content_not_by_folder(tmp_path):
    from conftest import write_tiny_mnist

    from mnist_cnn.data import data_fingerprint

    here = write_tiny_mnist(tmp_path / "machine-a" / "mnist")
    there = write_tiny_mnist(tmp_path / "machine-b" / "data", gz=False)  # same images, unzipped
    other = write_tiny_mnist(tmp_path / "other", train=1300)
    assert data_fingerprint(None) == "shipped"
    assert data_fingerprint(here) == data_fingerprint(there) != data_fingerprint(other)
    assert data_fingerprint(here).startswith("sha256:")
    assert (Fidelity.of(SETTINGS, 1000, 200, here, "cpu", 0)
            == Fidelity.of(SETTINGS, 1000, 200, there, "cpu", 0)
            != Fidelity.of(SETTINGS, 1000, 200, other, "cpu", 0))


def test_merge_adds_another_machines_curves_by_the_rules_of_put(tmp_path):
    ours, theirs = CurveTable(tmp_path / "a.db"), CurveTable(tmp_path / "b.db")
    cuda = Fidelity.of(SETTINGS, 1000, 200, None, "cuda", 0)
    ours.put(CNNConfig(), FIDELITY, 0, [record(1, 0.5), record(2, 0.6)], complete=True, source="a#0")
    ours.put(CNNConfig(), FIDELITY, 1, [record(1, 0.5)], complete=False, source="a#1")
    theirs.put(CNNConfig(), FIDELITY, 0, [record(1, 0.9), record(2, 0.9)], complete=True,
               source="b#0")  # ours is complete: it stays
    theirs.put(CNNConfig(), FIDELITY, 1, [record(1, 0.7), record(2, 0.8)], complete=True,
               source="b#1")  # completes our partial curve
    theirs.put(CNNConfig(), cuda, 0, [record(1, 0.4), record(2, 0.8)], complete=True,
               source="b#2")  # another device kind: a row of its own, never ours
    assert ours.merge(theirs) == (2, 1)
    assert ours.merge(theirs) == (0, 3)  # merging again changes nothing
    assert ours.get(CNNConfig(), FIDELITY, 0).source == "a#0"
    assert ours.get(CNNConfig(), FIDELITY, 1).source == "b#1"
    assert set(ours.seeds(CNNConfig(), FIDELITY)) == {0, 1}
    assert ours.seeds(CNNConfig(), cuda)[0].source == "b#2"
    with pytest.raises(CurveTableError, match="into itself"):
        ours.merge(CurveTable(tmp_path / "a.db"))


def test_merge_curves_command(tmp_path):
    import subprocess
    import sys

    theirs = CurveTable(tmp_path / "theirs.db")
    theirs.put(CNNConfig(), FIDELITY, 0, [record(1, 0.5), record(2, 0.6)], complete=True)
    command = [sys.executable, "-c", "from bench.cli import main; main()", "merge-curves",
               "--results-dir", str(tmp_path / "results")]
    done = subprocess.run([*command, str(tmp_path / "theirs.db")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "1 curves added, 0 already in" in done.stdout
    assert CurveTable(tmp_path / "results" / "curves.db").seeds(CNNConfig(), FIDELITY)
    missing = subprocess.run([*command, str(tmp_path / "none.db")], capture_output=True, text=True)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
