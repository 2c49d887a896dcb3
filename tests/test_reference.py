"""bench.store.reference: curve-table rows as diffable text with a manifest, merged back exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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


REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference" / "faq-cpu.jsonl"
SEEDS = {0, 1, 2}


def valid_faq_keys() -> set[str]:
    """The config keys of every valid faq grid point at the search's default fidelity, split 0."""
    from bench.benchmark.grid import valid_grid
    from bench.search.settings import SearchSettings
    from bench.search.spaces import load_space
    from bench.store.identity import measurement_keys

    settings = SearchSettings()
    return {measurement_keys(config, Fidelity.of(train, 55_000, settings.validation_size, None,
                                                 "cpu", 0))
            for _, config, train in valid_grid(load_space("faq"), settings)}


def test_the_shipped_faq_reference_rows_are_valid_faq_configs_at_the_default_fidelity():
    """results/reference/faq-cpu.jsonl: its manifest agrees with its rows, and every row is a valid
    grid point of the faq space at the search's default fidelity, on split 0: the key a search
    or compare on a fresh clone looks it up by."""
    from bench.store.identity import measurement_keys

    rows = read_reference(REFERENCE)
    manifest = json.loads(manifest_path(REFERENCE).read_text())
    assert manifest["rows"] == len(rows) > 0 and manifest["threads"] == [1]
    assert {"machine", "torch", "optuna", "command", "status", "training_hours", "cpu"} <= set(manifest)
    assert sorted({row["seed"] for row in rows}) == manifest["seeds"]
    valid = valid_faq_keys()
    assert len(valid) == 220
    keys = [measurement_keys(row["config"], row["fidelity"]) for row in rows]
    assert set(keys) <= valid
    assert all(row["complete"] and len(row["curve"]) == 8 for row in rows)


def test_the_shipped_table_covers_the_faq_space_as_far_as_its_manifest_says():
    """Complete (its status says so) exactly when every valid faq config has seeds 0, 1 and 2;
    the grid runs seed by seed, so a later seed only measures configs seed 0 has."""
    from collections import Counter, defaultdict

    from bench.store.identity import measurement_keys

    rows = read_reference(REFERENCE)
    manifest = json.loads(manifest_path(REFERENCE).read_text())
    seeds = defaultdict(set)
    for row in rows:
        seeds[measurement_keys(row["config"], row["fidelity"])].add(row["seed"])
    assert manifest["rows_per_seed"] == {str(seed): count for seed, count
                                         in sorted(Counter(row["seed"] for row in rows).items())}
    assert all(0 in measured for measured in seeds.values())
    covered = all(SEEDS <= seeds.get(key, set()) for key in valid_faq_keys())
    assert covered == manifest["status"].startswith("complete"), manifest["status"]


def test_a_grid_rerun_of_a_shipped_config_reproduces_its_row(tmp_path, reference_cpu):
    """The cheapest shipped config of seed 0 measured again by `grid` at one thread, as the table
    was, and judged by the check `train` and `confirm` run (`Reference.check`): bitwise where this
    machine's CPU fingerprint (model, cache, vector features, torch and its kernels) is the
    manifest's; elsewhere, or with MNIST_BENCH_TEST_CPU=foreign, within seed noise."""
    import os
    import subprocess
    import sys
    import warnings

    from bench.evidence.reproduction import Measured, Reference
    from bench.store.curves import curve_value
    from bench.store.identity import KNOBS, normalized_config

    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("one thread needs Linux's sched_setaffinity (train uses the cores it may run on)")
    rows = read_reference(REFERENCE)
    usable = [row for row in rows if row["seed"] == 0 and curve_value(row["curve"]) > 0.5]
    sample = min(usable, key=lambda row: sum(record["seconds"] for record in row["curve"]))
    network = normalized_config(sample["config"])
    faq = (Path(__file__).resolve().parents[1] / "search_spaces" / "faq.toml").read_text()
    params = "\n".join(f'[params.{knob}]\ntype = "categorical"\nchoices = [{network[knob]}]\n'
                       for knob in KNOBS)
    space = tmp_path / "one.toml"
    space.write_text(f"max_mflops_per_image = 46\n\n{params}\n{faq[faq.index('[fixed]'):]}")
    core = min(os.sched_getaffinity(0))
    result = subprocess.run(
        [sys.executable, "-c", "from bench.cli import main; main()", "grid", "--space", str(space),
         "--results-dir", str(tmp_path / "results")],
        capture_output=True, text=True, timeout=600,
        preexec_fn=lambda: os.sched_setaffinity(0, {core}))  # one core: torch runs 1 thread
    assert result.returncode == 0, result.stderr[-2000:]
    (row,) = [r for r in CurveTable(tmp_path / "results" / "curves.db").rows() if r["complete"]]
    assert row["threads"] == 1 and row["seed"] == 0
    assert row["fidelity"] == sample["fidelity"]  # the same measurement, key for key
    check = Reference(rows, REFERENCE.name).check(row["config"], row["fidelity"],
                                                 [Measured(0, tuple(row["curve"]))])
    assert check is not None and check.other_fidelity is None and 0 in check.reference
    if reference_cpu.same:
        assert check.identical == (0,), (f"same CPU fingerprint, same thread count, yet the "
                                         f"curve differs: {check.sentence()}")
        assert check.verdict() == "this machine reproduces the reference bitwise"
        print(f"grid rerun of {network}: bitwise equal to the shipped row (same CPU fingerprint)")
        return
    # Another CPU: seed 0 is judged as another CPU's rounding, against the pooled seed noise.
    assert check.pooled_sd is not None and 0 < check.pooled_sd < 0.01, check.sentence()
    assert check.reproduced is True and check.differing_beyond_noise == (), check.sentence()
    assert "reproduces the reference" in check.sentence()
    warnings.warn(f"{reference_cpu.why}: {check.sentence()}")


# The ten-epoch slice (search_spaces/faq-tutorial.toml): measured in parts, kept under
# in-progress/ (which no command reads) until it is complete, then beside faq-cpu.jsonl.
SLICE_NAME = "faq-tutorial-cpu.jsonl"
SLICE = next((path for path in (REFERENCE.parent / SLICE_NAME,
                                REFERENCE.parent / "in-progress" / SLICE_NAME) if path.exists()),
             None)


@pytest.mark.skipif(SLICE is None, reason="the ten-epoch slice is not measured yet")
def test_the_ten_epoch_slice_holds_designed_configs_at_the_tutorial_training_as_its_manifest_says():
    """Every row is one of the slice's 40 designed points or 2 picked ones at ten epochs of
    constant Adam 1e-3, one evaluation an epoch with its training-subset scores, split 0; the
    manifest counts them, its status is "complete" exactly when every point has seeds 0, 1 and 2,
    and the networks it names as picks are measured."""
    from collections import defaultdict

    from bench.benchmark.grid import valid_grid
    from bench.search.settings import SearchSettings
    from bench.search.spaces import load_space
    from bench.store.identity import measurement_keys

    keys = set()
    for space, designed in (("faq-tutorial", 40), ("faq-tutorial-picks", 2)):
        settings = SearchSettings(space=space, epochs=10, evaluations_per_epoch=1)
        points = valid_grid(load_space(space), settings)
        assert len(points) == designed
        keys |= {measurement_keys(config, Fidelity.of(train, 55_000, settings.validation_size,
                                                      None, "cpu", 0))
                 for _, config, train in points}
    assert len(keys) == 42  # the picks are not among the designed configs
    rows = read_reference(SLICE)
    manifest = json.loads(manifest_path(SLICE).read_text())
    assert manifest["rows"] == len(rows) > 0 and manifest["threads"] == [1]
    seeds = defaultdict(set)
    for row in rows:
        key = measurement_keys(row["config"], row["fidelity"])
        assert key in keys, row["config"]
        assert row["complete"] and [r["epoch"] for r in row["curve"]] == [float(e) for e in range(1, 11)]
        assert all("train_subset_loss" in r and "train_subset_accuracy" in r for r in row["curve"])
        seeds[key].add(row["seed"])
    covered = all(SEEDS <= seeds.get(key, set()) for key in keys)
    assert covered == manifest["status"].startswith("complete"), manifest["status"]
    for network in manifest.get("picks", {}).values():  # what the report gives a regret for
        assert any(key.config == measurement_keys(network, rows[0]["fidelity"]).config
                   for key in seeds)
