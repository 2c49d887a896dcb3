"""bench.benchmark.compare: one replayed study per (sampler, pruner, seed), resumable, missing configs trained."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
import signal
import subprocess
import sys
import time
from pathlib import Path
from statistics import fmean

import optuna
import pytest
from click.testing import CliRunner
from benchmark_studies import write_compare_group

from bench.store import layout, schema
from bench.cli import cli
from bench.benchmark import compare
from bench.benchmark.compare import CompareSettings, run_compare
from bench.store.curves import CurveTable
from bench.benchmark.grid import run_grid, run_grids
from bench.report.benchmark import regret_on_page, split_compare, summarize
from bench.report.load import load_studies
from bench.store.studies import StudySource
from bench.search.settings import SearchSettings

# stride 2 with pool 3 collapses the map: 2 of the 4 grid points are invalid.
SPACE = """
[params.kernel_size]
type = "categorical"
choices = [{kernels}]

[params.pool_size]
type = "categorical"
choices = [2, 3]

[fixed]
channels = [4, 8]
stride = 2
fc_width = 16
batch_size = 50
learning_rate = 0.01
"""
FIDELITY = dict(epochs=1, evaluations_per_epoch=2, train_size=600, validation_size=200)


def write_space(folder: Path, name: str, kernels: str) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(SPACE.format(kernels=kernels))
    return path


@pytest.fixture(scope="module")
def filled(tiny_mnist, tmp_path_factory) -> SearchSettings:
    """The grid of the tiny space trained once: a curve table with both valid configs."""
    folder = tmp_path_factory.mktemp("compare")
    settings = SearchSettings(space=str(write_space(folder, "tiny", "3, 5")), data_dir=tiny_mnist,
                              results_dir=folder / "grid", curve_table=folder / "curves.db",
                              **FIDELITY)
    assert run_grid(settings).trained == 2
    return settings


def key(config: dict) -> str:
    return json.dumps(config, sort_keys=True)


def best_by_config(table: Path) -> dict[str, float]:
    return {key(curve.config): curve.best_validation_accuracy
            for curve in CurveTable(table).curves(complete_only=True)}


def test_one_replayed_study_per_combination_and_seed_and_reruns_resume(filled, tmp_path):
    results = tmp_path / "results"
    base = SearchSettings(**{**filled.__dict__, "results_dir": results})
    settings = CompareSettings(base=base, samplers=("tpe", "random"), pruners=("median", "none"),
                               seeds=2, trials=6, workers=2)
    outcome = run_compare(settings)

    url = group_storage(results, "compare-tiny")
    assert sorted(p.name for p in (results / "compare-tiny").iterdir()) == ["journal.log"]
    names = {f"compare-tiny-{s}-{p}-seed{k}" for s in ("tpe", "random")
             for p in ("median", "none") for k in (0, 1)}
    assert set(optuna.get_all_study_names(url)) == names
    assert (outcome.run, outcome.skipped, outcome.trials, outcome.trained) == (8, 0, 48, 0)
    assert outcome.replayed + outcome.invalid == 48 and outcome.replayed > 0
    best = best_by_config(filled.curve_table)
    table_curves = {key(c.config): c for c in CurveTable(filled.curve_table).curves()}
    top = max(table_curves.values(), key=lambda c: c.best_validation_accuracy)
    for name in names:
        study = optuna.load_study(study_name=name, storage=url)
        _, sampler, pruner, seed = name.rsplit("-", 3)
        # one seed per config: a config's mean is its one value; the picked config is the best
        # completed trial's (none when the pruner stopped every trial); with one seed there is
        # none to reserve, so no baseline and no regret (the report says why)
        completed = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        picked = study.best_trial if completed else None
        picked_mean = best[key(picked.user_attrs[schema.ATTR_CONFIG])] if picked else None
        assert study.user_attrs["compare"] == {
            "group": "compare-tiny", "space": "tiny", "sampler": sampler, "pruner": pruner,
            "seed": int(seed[4:]), "trials": 6, "curve_table": str(filled.curve_table),
            "reserved_seeds": [],
            "best_in_table": max(best.values()), "best_in_table_seeds": 1,
            "best_config_in_table": {"kernel_size": top.config["kernel_size"], "pool_size": 2},
            "table_configs": 2, "grid_configs": 2,
            **dict.fromkeys(compare.BASELINE_KEYS),
            "picked_trial": picked.number if picked else None, "picked_config_mean": picked_mean,
            "picked_config_seeds": 1 if picked else None,
            "picked_config_reserved_mean": None,
            "picked_config_reserved_seeds": 0 if picked else None, "off_point_draws": 0}
        recorded = study.user_attrs["search_settings"]
        assert (recorded["sampler"], recorded["pruner"], recorded["seed"]) == (sampler, pruner, 0)
        trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,
                                          optuna.trial.TrialState.PRUNED))
        assert len(trials) == len(study.trials) == 6
        for trial in trials:
            attrs = trial.user_attrs
            if schema.ATTR_INVALID_REASON in attrs:
                assert trial.params["pool_size"] == 3
                continue
            assert attrs[schema.ATTR_REPLAYED] is True and schema.ATTR_WEIGHTS not in attrs
            assert attrs[schema.ATTR_SEED] == 0  # the only recorded seed, drawn
            assert attrs[schema.ATTR_FIDELITY]["train_size"] == 600
            curve = table_curves[key(attrs[schema.ATTR_CONFIG])]
            accuracies = [r.validation_accuracy for r in curve.records]
            steps = sorted(trial.intermediate_values)
            assert [trial.intermediate_values[s] for s in steps] == accuracies[:len(steps)]
            if trial.state == optuna.trial.TrialState.COMPLETE:
                assert trial.value == best[key(attrs[schema.ATTR_CONFIG])]
                assert attrs[schema.ATTR_FULL_SECONDS] == pytest.approx(curve.training_seconds)

    # The report reads the group's journal like any study file.
    report = CliRunner().invoke(cli, ["report", str(results)])
    assert report.exit_code == 0, report.output
    assert (results / "report" / "regret.csv").is_file()
    assert ("no seed was reserved (the curve table has one seed per config), so no study has a "
            "regret") in (results / "report" / "summary.md").read_text()

    # A rerun finds every study complete and writes nothing.
    started = started_at(url, names)
    rerun = CliRunner().invoke(cli, _cli_args(base, "--samplers", "tpe,random", "--pruners",
                                              "median,none", "--seeds", "2", "--trials", "6"))
    assert rerun.exit_code == 0, rerun.output
    assert "0 of 8 studies run" in rerun.output and "8 already complete" in rerun.output
    assert started_at(url, names) == started
    other = CliRunner().invoke(cli, _cli_args(base, "--samplers", "tpe", "--pruners", "none",
                                              "--seeds", "1", "--trials", "7"))
    assert other.exit_code == 2 and "was run with trials=6, this command asks trials=7" in other.output

    # A study left incomplete (created, no trials written) is replaced; the others are kept.
    broken = "compare-tiny-random-none-seed1"
    optuna.delete_study(study_name=broken, storage=url)
    optuna.create_study(study_name=broken, storage=url, direction="maximize")
    again = run_compare(CompareSettings(**{**settings.__dict__, "workers": 1}))
    assert (again.run, again.replaced, again.skipped) == (1, 1, 7)
    replaced = optuna.load_study(study_name=broken, storage=url)
    assert len(replaced.trials) == 6 and replaced.user_attrs["compare"]["seed"] == 1


def test_queries_never_draw_the_reserved_seed_and_regret_is_scored_on_it(filled, tmp_path):
    """Three seeds per config, 0.2 pp apart: replayed values differ between queries of one config,
    no query draws the reserved seed 2, and the compare attr scores the pick there, against the
    config with the highest mean over seeds 0-1 (the baseline), also on seed 2."""
    table_path = tmp_path / "curves.db"
    shutil.copy(filled.curve_table, table_path)
    table = CurveTable(table_path)
    for stored in table.curves(complete_only=True):
        for seed in (1, 2):
            shifted = [replace(r, validation_accuracy=r.validation_accuracy - 0.002 * seed)
                       for r in stored.records]
            assert table.put(stored.config, stored.fidelity, seed, shifted, complete=True,
                             measurements=stored.measurements, source="test#seed")
    by_config = {key(c.config): table.seeds(c.config, c.fidelity)
                 for c in table.curves(complete_only=True)}
    value = {k: {seed: c.best_validation_accuracy for seed, c in seeds.items()}
             for k, seeds in by_config.items()}
    base = SearchSettings(**{**filled.__dict__, "results_dir": tmp_path / "results",
                             "curve_table": table_path})
    settings = CompareSettings(base=base, samplers=("random",), pruners=("none",), seeds=1,
                               trials=12, workers=1)
    outcome = run_compare(settings)
    assert outcome.reserved_seeds == (2,) and "reserved seed(s) 2" in outcome.summary()

    storage = group_storage(tmp_path / "results", "compare-tiny")
    study = optuna.load_study(study_name="compare-tiny-random-none-seed0", storage=storage)
    values: dict[str, set[float]] = {}
    drawn_seeds = set()
    for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        config = key(trial.user_attrs[schema.ATTR_CONFIG])
        drawn_seeds.add(trial.user_attrs[schema.ATTR_SEED])
        assert trial.value == value[config][trial.user_attrs[schema.ATTR_SEED]]
        values.setdefault(config, set()).add(trial.value)
    assert max(len(v) for v in values.values()) > 1  # one config, different values: drawn seeds
    assert drawn_seeds == {0, 1}  # 12 queries of 2 configs drew both replay seeds, never seed 2
    attr = study.user_attrs["compare"]
    picked = key(study.best_trial.user_attrs[schema.ATTR_CONFIG])
    leader = max(value, key=lambda k: fmean([value[k][0], value[k][1]]))
    assert attr["reserved_seeds"] == [2]
    assert (attr["baseline_replay_mean"], attr["baseline_replay_seeds"]) == (
        pytest.approx(fmean([value[leader][0], value[leader][1]])), 2)
    assert (attr["baseline_reserved_mean"], attr["baseline_reserved_seeds"]) == (
        value[leader][2], 1)
    assert attr["baseline_config"]["kernel_size"] == json.loads(leader)["kernel_size"]
    assert (attr["picked_config_reserved_mean"], attr["picked_config_reserved_seeds"]) == (
        value[picked][2], 1)
    assert attr["picked_config_mean"] == pytest.approx(fmean(value[picked].values()))

    # A fourth seed of every config, 0.4 pp lower (as `grid --seeds 4` adds it): the default now
    # reserves seed 3, which the complete study may have drawn, so the rerun is refused ...
    for stored in table.curves(complete_only=True):
        if stored.seed == 0:
            table.put(stored.config, stored.fidelity, 3,
                      [replace(r, validation_accuracy=r.validation_accuracy - 0.004)
                       for r in stored.records], complete=True, source="test#grid")
    with pytest.raises(ValueError, match="was run with reserved seeds 2, this command reserves 3: "
                                         "pass --reserved-seeds 2 to resume"):
        run_compare(settings)
    # ... and with --reserved-seeds 2 it runs nothing and brings the means up to date
    again = CompareSettings(**{**settings.__dict__, "reserved_seeds": (2,)})
    assert run_compare(again).run == 0
    after = optuna.load_study(study_name=study.study_name, storage=storage).user_attrs["compare"]
    fourth = {k: v[0] - 0.004 for k, v in value.items()}
    assert after["picked_config_mean"] == pytest.approx(
        fmean([*value[picked].values(), fourth[picked]]))
    assert after["picked_config_reserved_mean"] == value[picked][2]  # seed 2 alone, as before
    assert after["baseline_replay_seeds"] == 3  # seeds 0, 1 and 3 select the baseline now

    # A study written by a compare before reserved seeds is refused, not silently mixed in
    old = {k: v for k, v in after.items() if k != "reserved_seeds"}
    storage.set_study_user_attr(storage.get_study_id_from_name(study.study_name), "compare", old)
    with pytest.raises(ValueError, match="written by a compare before reserved seeds"):
        run_compare(again)


def test_a_config_missing_from_the_table_is_trained_and_added(filled, tmp_path):
    table = tmp_path / "curves.db"
    shutil.copy(filled.curve_table, table)  # the shared table keeps its two configs
    base = SearchSettings(**{**filled.__dict__, "results_dir": tmp_path / "results",
                             "curve_table": table,
                             "space": str(write_space(tmp_path, "wider", "3, 5, 7"))})
    outcome = run_compare(CompareSettings(base=base, samplers=("grid",), pruners=("none",),
                                          seeds=1, trials=10, workers=1))

    assert "lacks 1 of the 3 valid grid configs" in outcome.table_note
    assert (outcome.trials, outcome.trained, outcome.replayed, outcome.invalid) == (6, 1, 2, 3)
    study = optuna.load_study(study_name="compare-wider-grid-none-seed0",
                              storage=group_storage(tmp_path / "results", "compare-wider"))
    trained = [t for t in study.trials if schema.ATTR_LEARNING_CURVE in t.user_attrs
               and not t.user_attrs.get(schema.ATTR_REPLAYED)]
    assert [t.params for t in trained] == [{"kernel_size": 7, "pool_size": 2}]
    added = best_by_config(table)
    assert len(added) == 3 and trained[0].value == added[key(trained[0].user_attrs["config"])]
    # every study's "compare" attr counts the config the run added
    assert study.user_attrs["compare"]["table_configs"] == 3


def test_a_fresh_clone_replays_the_reference_table_it_ships_without_training(filled, tmp_path):
    """results/reference/*.jsonl is merged into an empty curve table first: nothing is trained,
    and a rerun adds nothing twice."""
    from bench.store.reference import export_reference

    results = tmp_path / "results"
    export_reference(CurveTable(filled.curve_table), results / "reference" / "tiny.jsonl", {})
    base = SearchSettings(**{**filled.__dict__, "results_dir": results,
                             "curve_table": results / "curves.db"})
    settings = CompareSettings(base=base, samplers=("random",), pruners=("none",), seeds=1,
                               trials=4, workers=1)
    outcome = run_compare(settings)
    assert outcome.trained == 0 and outcome.replayed > 0
    assert "has all 2 valid grid configs" in outcome.table_note
    assert best_by_config(results / "curves.db") == best_by_config(filled.curve_table)
    from bench.store.reference import merge_shipped
    assert merge_shipped(results, CurveTable(results / "curves.db")) == []  # nothing new


def test_ctrl_c_keeps_finished_studies_and_exits_130(filled, tmp_path):
    base = SearchSettings(**{**filled.__dict__, "results_dir": tmp_path})
    command = [sys.executable, "-c", "from bench.cli import main; main()",
               *_cli_args(base, "--samplers", "random", "--pruners", "none", "--seeds", "200",
                          "--trials", "6", "--workers", "1")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while complete_studies(tmp_path) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "Error: interrupted; rerun the same command to resume"
    names = optuna.get_all_study_names(group_storage(tmp_path, "compare-tiny"))
    assert 2 <= complete_studies(tmp_path) == len(names) < 200  # every study written is whole


def group_storage(results: Path, group: str):
    """The journal a compare group's studies are in (results/<group>/journal.log)."""
    from bench.store.storage import open_journal

    return open_journal(layout.study_journal(results, group))


def complete_studies(results: Path) -> int:
    """Studies of compare-tiny with their "compare" attr, read without creating the file."""
    if not layout.study_journal(results, "compare-tiny").is_file():
        return 0
    storage = group_storage(results, "compare-tiny")
    return sum(1 for study in storage.get_all_studies() if "compare" in study.user_attrs)


def started_at(url, names: set[str]) -> dict[str, list]:
    """When each trial of each study started: a study written again would differ."""
    return {name: [t.datetime_start for t in optuna.load_study(study_name=name, storage=url).trials]
            for name in names}


def _cli_args(base: SearchSettings, *options: str) -> list[str]:
    return ["compare", "--space", base.space, "--data-dir", str(base.data_dir),
            "--results-dir", str(base.results_dir), "--replay", str(base.curve_table),
            "--epochs", "1", "--evaluations-per-epoch", "2", "--train-size", "600",
            "--validation-size", "200", *options]


@pytest.mark.parametrize("options, message", [
    (("--samplers", "tpe,annealing"), "unknown sampler 'annealing'"),
    (("--pruners", "median,nope"), "unknown pruner 'nope'"),
    (("--no-replay",), "drop --no-replay"),
    (("--seeds", "0"), "--seeds"),
    (("--reserved-seeds", "0"), "seed 0 is reserved but is also --seed"),
    (("--reserved-seeds", "2,x"), "give seeds as whole numbers"),
    (("--reserved-seeds", "4"), "reserved seed 4 is not recorded for every config"),
])
def test_bad_input_is_one_line_and_exit_2(filled, tmp_path, options, message):
    base = SearchSettings(**{**filled.__dict__, "results_dir": tmp_path})
    result = CliRunner().invoke(cli, _cli_args(base, *options))
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "compare-tiny").exists()


# A designed slice: 3 of the 9 grid points (kernel 3/5/7 x pool 1/2/3), measured at whole epochs.
SLICE = """
points = [{kernel_size = 3, pool_size = 2}, {kernel_size = 5, pool_size = 2},
          {kernel_size = 5, pool_size = 1}]

[params.kernel_size]
type = "int"
low = 3
high = 7
step = 2

[params.pool_size]
type = "int"
low = 1
high = 3

[fixed]
channels = [4, 8]
fc_width = 16
batch_size = 50
learning_rate = 0.01
"""
WHOLE_EPOCHS = dict(epochs=3, evaluations_per_epoch=1, train_size=600, validation_size=200)


def test_compare_over_whole_epochs_on_designed_points_trains_nothing_and_prunes_at_epochs(
        tiny_mnist, tmp_path):
    """The ten-epoch slice's case in small: a designed-points space whose table holds every point
    at 2 seeds and 3 epochs of one evaluation each. Every trial is one of the points, replayed
    from a replay seed; draws outside the points are not trials; Hyperband stops trials at whole
    epochs; the picks are scored on the reserved seed; the report says each group's budget."""
    (tmp_path / "slice.toml").write_text(SLICE)
    grid = SearchSettings(space=str(tmp_path / "slice.toml"), data_dir=tiny_mnist,
                          results_dir=tmp_path / "grid", curve_table=tmp_path / "curves.db",
                          **WHOLE_EPOCHS)
    assert sum(outcome.trained for outcome in run_grids(grid, seeds=2)) == 6
    points = [{"kernel_size": 3, "pool_size": 2}, {"kernel_size": 5, "pool_size": 2},
              {"kernel_size": 5, "pool_size": 1}]
    seed_values = {key(c.config): {seed: s.best_validation_accuracy
                                   for seed, s in CurveTable(grid.curve_table).seeds(
                                       c.config, c.fidelity).items()}
                   for c in CurveTable(grid.curve_table).curves(complete_only=True)}
    results = tmp_path / "results"
    base = SearchSettings(**{**grid.__dict__, "results_dir": results})
    outcome = run_compare(CompareSettings(base=base, samplers=("random", "tpe"),
                                          pruners=("hyperband", "none"), seeds=2, trials=9,
                                          workers=1))
    assert (outcome.trials, outcome.replayed, outcome.trained, outcome.invalid) == (72, 72, 0, 0)
    assert outcome.reserved_seeds == (1,)
    assert outcome.off_point_draws > 0  # 6 of 9 grid points are off the design

    storage = group_storage(results, "compare-slice")
    pruned_steps, off_points = [], 0
    for name in optuna.get_all_study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage)
        attr = study.user_attrs["compare"]
        off_points += attr["off_point_draws"]
        assert [t.number for t in study.trials] == list(range(9))
        for trial in study.trials:
            assert trial.params in points
            assert trial.user_attrs[schema.ATTR_SEED] == 0  # seed 1 is reserved: never drawn
            curve = trial.user_attrs[schema.ATTR_LEARNING_CURVE]
            steps = sorted(trial.intermediate_values)
            assert [record["epoch"] for record in curve] == steps  # one step, one whole epoch
            if trial.state == optuna.trial.TrialState.PRUNED:
                pruned_steps.append(steps[-1])
        picked = study.trials[attr["picked_trial"]]
        assert picked.value == study.best_value
        assert attr["picked_config_reserved_mean"] == pytest.approx(
            seed_values[key(picked.user_attrs[schema.ATTR_CONFIG])][1])
    assert off_points == outcome.off_point_draws
    # Hyperband over 1..3 epochs at reduction factor 3: its rungs are epochs 1 and 3
    assert pruned_steps and set(pruned_steps) <= {1, 3}

    # Beside a one-epoch group, the report words each group's verdicts with its budget and
    # puts one pruner's verdicts at both budgets next to each other.
    write_compare_group(results)
    _, studies = split_compare(load_studies(StudySource(results)))
    bench = summarize(studies)
    hyperband = [line for line in bench.verdicts if "Hyperband used" in line]
    assert [line.split(", Hyperband")[0] for line in hyperband] == [
        "On the faq space (1 epoch, 4 evaluations per epoch)",
        "On the slice space (3 epochs, 1 evaluation per epoch)"]
    first = bench.verdicts.index(hyperband[0])
    assert bench.verdicts[first + 1] == hyperband[1]
    page = regret_on_page(bench)
    assert set(zip(page["group"], page["budget"])) == {
        ("compare-faq", "1 epoch, 4 evaluations per epoch"),
        ("compare-slice", "3 epochs, 1 evaluation per epoch")}


def test_a_sampler_settled_off_the_design_gets_its_remaining_trials_at_random(tmp_path):
    """A sampler that only ever draws off the designed points (kernel 7 is in none) still ends
    with exactly the trials asked for: past the draw limit, designed points drawn at random
    through Optuna's queue, each marked with why."""
    from bench.benchmark.compare import OFF_POINT_DRAW_FACTOR, _optimize_designed
    from bench.search.spaces import load_space

    (tmp_path / "slice.toml").write_text(SLICE)
    space = load_space(str(tmp_path / "slice.toml"))
    stuck = optuna.samplers.PartialFixedSampler({"kernel_size": 7},
                                                optuna.samplers.RandomSampler(seed=0))
    study = optuna.create_study(direction="maximize", sampler=stuck)

    def objective(trial: optuna.Trial) -> float:
        params = {"kernel_size": trial.suggest_int("kernel_size", 3, 7, step=2),
                  "pool_size": trial.suggest_int("pool_size", 1, 3)}
        if not space.designed(params):
            raise optuna.TrialPruned()
        return 0.5

    _optimize_designed(study, objective, space, trials=4)
    drawn = study.get_trials(deepcopy=False)
    designed = [t for t in drawn if space.designed(t.params)]
    assert len(designed) == 4
    assert all(schema.ATTR_DRAWN_AT_RANDOM in t.user_attrs for t in designed)
    assert len(drawn) - len(designed) == int(OFF_POINT_DRAW_FACTOR * 4 * 9 / 3)
