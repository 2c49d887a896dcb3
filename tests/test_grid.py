"""bench.benchmark.grid and replay through the real commands: the grid fills exactly the valid configs,
and a study replaying the table returns the trained values, marked as replayed."""

from __future__ import annotations

import optuna
import pytest
from click.testing import CliRunner

from bench.store import layout, schema
from bench.cli import cli
from bench.store.curves import CurveTable

# 2 x 2 grid on a stride-2 network: pool 3 collapses the map, so 2 of the 4 configs are invalid.
SPACE = """
[params.pool_size]
type = "int"
low = 2
high = 3

[params.fc_width]
type = "categorical"
choices = [8, 16]

[fixed]
channels = [4, 8]
stride = 2
batch_size = 50
learning_rate = 0.01
"""


@pytest.fixture
def run(tiny_mnist, tmp_path):
    space = tmp_path / "tiny.toml"
    space.write_text(SPACE)

    def invoke(command: str, *options: str):
        result = CliRunner().invoke(cli, [
            command, "--space", str(space), "--data-dir", str(tiny_mnist),
            "--results-dir", str(tmp_path / "results"), "--validation-size", "200",
            "--train-size", "600", "--epochs", "1", "--evaluations-per-epoch", "2", *options])
        assert result.exit_code == 0, result.output
        return result.output

    invoke.data_dir = tiny_mnist
    return invoke


def study(tmp_path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=layout.sqlite_url(tmp_path / "results", name))


def by_config(trials) -> dict:
    return {(t.params["pool_size"], t.params["fc_width"]): t for t in trials}


def test_grid_fills_exactly_the_valid_configs_once(run, tmp_path):
    output = run("grid")
    assert "grid of 4 configs (2 valid, 2 invalid): 2 trained, 0 replayed" in output
    curves = CurveTable(tmp_path / "results" / "curves.db").curves()
    assert sorted((c.config["pool_size"], c.config["fc_width"]) for c in curves) == [(2, 8), (2, 16)]
    assert all(c.complete and len(c.records) == 2 for c in curves)
    trials = by_config(study(tmp_path, "tiny-grid").trials)
    assert len(trials) == 4
    assert trials[(3, 8)].user_attrs[schema.ATTR_INVALID_REASON]
    for curve in curves:
        trial = trials[(curve.config["pool_size"], curve.config["fc_width"])]
        assert trial.value == curve.best_validation_accuracy

    # A clone that ships this table as a reference grids nothing again, and extends it by a seed.
    from bench.store.reference import export_reference

    clone = tmp_path / "clone"
    export_reference(CurveTable(tmp_path / "results" / "curves.db"),
                     clone / "reference" / "tiny.jsonl", {})
    space = tmp_path / "tiny.toml"
    extended = CliRunner().invoke(cli, [
        "grid", "--space", str(space), "--data-dir", str(run.data_dir), "--results-dir",
        str(clone), "--validation-size", "200", "--train-size", "600", "--epochs", "1",
        "--evaluations-per-epoch", "2", "--seeds", "2"])
    assert extended.exit_code == 0, extended.output
    assert "added 2 curves of the reference table" in extended.output
    assert "0 trained, 2 replayed" in extended.output and "2 trained, 0 replayed" in extended.output

    # Another grid study on the same table trains nothing: every valid config is replayed.
    output = run("grid", "--study-name", "again")
    assert "2 trained" not in output and "0 trained, 2 replayed" in output
    assert len(CurveTable(tmp_path / "results" / "curves.db").curves()) == 2
    assert "never tried" not in output

    # A grid study whose trials visited a point twice (older workers and resumes each shuffled
    # the grid their own way) holds a place for the repeat, so a resume tries the missing point.
    source = study(tmp_path, "tiny-grid")
    twice = copied_study(tmp_path, source, "twice", lambda t: trials[(2, 8)]
                         if t.params == {"pool_size": 2, "fc_width": 16} else t)
    assert len({tuple(sorted(t.params.items())) for t in twice.trials}) == 3
    output = run("grid", "--study-name", "twice")
    assert "never tried" not in output and "1 replayed" in output  # the copies count as trained
    assert (2, 16) in by_config(study(tmp_path, "twice").trials)


def copied_study(tmp_path, source: optuna.Study, name: str, change) -> optuna.Study:
    """A new grid study holding `change(t)` for each of `source`'s trials, with its settings."""
    layout.study_dir(tmp_path / "results", name).mkdir()
    copy = optuna.create_study(study_name=name, storage=layout.sqlite_url(tmp_path / "results", name),
                               direction="maximize")
    for key, value in source.user_attrs.items():
        copy.set_user_attr(key, value)
    copy.add_trials([change(t) for t in source.trials])
    return copy


def test_a_resumed_grid_retries_the_points_whose_run_was_interrupted(run, tmp_path):
    """An interrupted or killed run leaves its point's trial FAIL, which GridSampler counts as
    visited: the resume must retry it (Optuna's retry keeps its grid_id), not skip it for good."""
    run("grid")
    source = study(tmp_path, "tiny-grid")
    point = {"pool_size": 2, "fc_width": 16}

    def interrupted(trial):
        if trial.params != point:
            return trial
        return optuna.trial.create_trial(
            state=optuna.trial.TrialState.FAIL, params=trial.params,
            distributions=trial.distributions, system_attrs=trial.system_attrs,
            user_attrs={schema.ATTR_END_REASON: "interrupted by SIGINT"})

    copied_study(tmp_path, source, "interrupted", interrupted)
    # A resume with other settings is refused before it queues anything.
    refused = CliRunner().invoke(cli, [
        "grid", "--space", str(tmp_path / "tiny.toml"), "--data-dir", str(run.data_dir),
        "--results-dir", str(tmp_path / "results"), "--validation-size", "200", "--train-size",
        "600", "--epochs", "2", "--evaluations-per-epoch", "2", "--study-name", "interrupted"])
    assert refused.exit_code == 2 and len(study(tmp_path, "interrupted").trials) == 4
    output = run("grid", "--study-name", "interrupted")
    assert "retried 1 point whose run had been interrupted" in output and "never tried" not in output
    resumed = study(tmp_path, "interrupted").trials
    states = [t.state for t in resumed if t.params == point]
    assert states == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE]
    assert len(resumed) == 5  # the four points and the one retry, nothing more
    # Resumed again, the study is complete: nothing is retried twice or run again.
    again = run("grid", "--study-name", "interrupted")
    assert "retried" not in again and len(study(tmp_path, "interrupted").trials) == 5


def test_replayed_study_returns_the_trained_values_and_is_marked(run, tmp_path):
    run("search", "--sampler", "grid", "--pruner", "none", "--trials", "4", "--study-name",
        "trained", "--no-replay")
    table = tmp_path / "results" / "curves.db"
    output = run("search", "--sampler", "grid", "--pruner", "none", "--trials", "4",
                 "--study-name", "replayed", "--replay", str(table))
    assert "2 replayed from the curve table" in output
    trained = by_config(study(tmp_path, "trained").trials)
    replayed = by_config(study(tmp_path, "replayed").trials)
    for key, trial in trained.items():
        again = replayed[key]
        assert again.state == trial.state
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert again.value == trial.value
            assert again.intermediate_values == trial.intermediate_values
            assert again.user_attrs[schema.ATTR_REPLAYED] is True
            assert again.user_attrs[schema.ATTR_REPLAYED_FROM] == f"trained#{trial.number}"
            assert schema.ATTR_REPLAYED not in trial.user_attrs
    # Marked in trials.csv too.
    csv = (layout.trials_csv(tmp_path / "results", "replayed")).read_text()
    assert "user_attrs_replayed" in csv.splitlines()[0]


def test_grid_refuses_a_space_without_a_finite_grid(tiny_mnist, tmp_path):
    space = tmp_path / "open.toml"
    space.write_text('[params.learning_rate]\ntype = "float"\nlow = 0.001\nhigh = 0.1\n')
    result = CliRunner().invoke(cli, ["grid", "--space", str(space), "--data-dir", str(tiny_mnist),
                                      "--results-dir", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "has no grid" in result.output


def test_grid_with_several_seeds_trains_each_seed_on_one_split_and_resumes(run, tmp_path):
    output = run("grid", "--seeds", "2")
    assert output.count("2 trained, 0 replayed") == 2
    table = CurveTable(tmp_path / "results" / "curves.db")
    curves = table.curves()
    assert sorted((c.config["fc_width"], c.seed) for c in curves) == [(8, 0), (8, 1), (16, 0), (16, 1)]
    assert {c.fidelity.split_seed for c in curves} == {0}  # seed 1 repeats seed 0's measurement
    assert all(sorted(seeds) == [0, 1] for seeds in table.load().values())
    assert len(study(tmp_path, "tiny-grid-seed1").trials) == 4
    # A third seed trains only what is missing; the first two are replayed from their own seeds.
    output = run("grid", "--seeds", "3", "--study-name", "more")
    assert output.count("0 trained, 2 replayed") == 2 and "2 trained, 0 replayed" in output
    assert len(table.curves()) == 6


@pytest.mark.parametrize("sampler", ["grid", "qmc"])
def test_workers_and_resumes_of_a_grid_or_qmc_study_continue_one_sequence(sampler, tmp_path):
    """Grid and QMC give trial n the n-th point of a seeded order: a run, its resume and a second
    worker must continue one order, visiting what one uninterrupted run visits (the grid: each
    of its 12 points once; QMC: its sequence over the ordered knobs, categoricals being random)."""
    from dataclasses import replace

    from bench.search.settings import SearchSettings
    from bench.search.spaces import load_space
    from bench.search.study import open_study

    space_file = tmp_path / "twelve.toml"
    space_file.write_text(SPACE.replace("[params.pool_size]", "[params.kernel_size]\ntype = \"int\"\n"
                                        "low = 3\nhigh = 7\nstep = 2\n\n[params.pool_size]"))
    settings = SearchSettings(space=str(space_file), sampler=sampler, pruner="none",
                              results_dir=tmp_path / "results", seed=3, study_name="split")
    space = load_space(settings.space)

    def sample(trial: optuna.Trial) -> float:
        space.sample(trial, settings.plan())
        return 0.0

    for worker, trials in ((0, 5), (0, 4), (1, 3)):  # a run, its resume, another worker
        open_study(settings, space, worker_index=worker).optimize(sample, n_trials=trials)
    whole = replace(settings, study_name="whole")
    open_study(whole, space).optimize(sample, n_trials=12)
    ordered = ("kernel_size", "pool_size")
    visited = {name: [tuple(t.params[k] for k in ordered) for t in study(tmp_path, name).trials]
               for name in ("split", "whole")}
    assert visited["split"] == visited["whole"]
    if sampler == "grid":
        points = [tuple(sorted(t.params.items())) for t in study(tmp_path, "split").trials]
        assert len(set(points)) == 12
