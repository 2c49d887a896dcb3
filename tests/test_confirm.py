"""`mnist-bench confirm`: the top configs and a one-knob sweep raced on held-out seeds, as trials
of an ordinary study and rows of the curve table; resumable; bad input in one line."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from bench.evidence.measurements import is_search
from bench.store import layout, schema
from bench.store.curves import CurveTable
from bench.store.identity import trial_config_key, trial_seed

SPACE = """
[params.kernel_size]
type = "int"
low = 3
high = 5
step = 2

[params.fc_width]
type = "categorical"
choices = [8, 16, 32]

[fixed]
channels = [4, 8]
batch_size = 50
lr_schedule = "onecycle"
"""
STUDY = "tiny"
CLI = [sys.executable, "-c", "from bench.cli import main; main()"]


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def searched(tmp_path_factory, tiny_mnist) -> Path:
    """A finished 5-trial search on tiny data, copied fresh into each test's folder."""
    root = tmp_path_factory.mktemp("searched")
    space = root / "tiny.toml"
    space.write_text(SPACE)
    done = run("search", "--space", str(space), "--data-dir", str(tiny_mnist), "--results-dir",
               str(root / "results"), "--study-name", STUDY, "--validation-size", "200",
               "--train-size", "1000", "--evaluations-per-epoch", "2", "--trials", "5",
               "--pruner", "none", "--interim-validation-size", "100", "--precision", "bf16",
               "--allow-emulated-bf16")
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture
def results(searched, tmp_path) -> Path:
    import shutil

    shutil.copytree(searched, tmp_path / "copy")
    return tmp_path / "copy" / "results"


def load(results: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=layout.sqlite_url(results, STUDY))


def measured_pairs(results: Path) -> set[tuple[str, int]]:
    return {(trial_config_key(t), trial_seed(t))
            for name in (STUDY, STUDY + "-confirm")
            for t in load(results, name).get_trials(states=(TrialState.COMPLETE,))}


def test_confirm_measures_top_and_sweep_on_held_out_seeds_once(results):
    done = run("confirm", "--results-dir", str(results), "--top", "2", "--seeds", "2",
               "--max-seeds", "2")
    assert done.returncode == 0, done.stderr
    confirm = load(results, STUDY + "-confirm")  # plain Optuna reads it
    trials = confirm.get_trials()
    assert trials and all(t.state == TrialState.COMPLETE for t in trials)
    assert confirm.user_attrs["confirm_of"] == STUDY
    targets = {trial_config_key(t) for t in trials}
    # every target config gets held-out seeds 1 and 2; the search's seed 0 selected, so confirm
    # never measures it (and a config only the sweep chose has no seed 0 at all)
    for target in targets:
        assert sorted(trial_seed(t) for t in trials if trial_config_key(t) == target) == [1, 2]
    assert {t.user_attrs["confirm_role"] for t in trials} == {"top", "sweep"}
    assert not is_search(confirm)  # so its seeds are held out
    assert "a race of" in done.stdout and "1 round:" in done.stdout
    # its closing line counts what is decided as the report will: one function says both
    from bench.evidence.gather import decided_line, gather

    line = decided_line(gather([load(results, STUDY), confirm]))
    assert f"(the report: {line[0].lower()}{line[1:-1]})" in done.stdout
    # at the search's fidelity: bf16; its first evaluation scores the interim subset, its last all 200
    assert all(t.user_attrs[schema.ATTR_TRAIN_SETTINGS]["precision"] == "bf16" for t in trials)
    assert all(t.user_attrs[schema.ATTR_TRAIN_SETTINGS]["interim_validation_size"] == 100
               and [p["interim"] for p in t.user_attrs[schema.ATTR_LEARNING_CURVE]] == [True, False]
               for t in trials)
    # the confirm study never measures a (config, seed) twice, nor one the search has
    confirmed = [(trial_config_key(t), trial_seed(t)) for t in trials]
    assert len(confirmed) == len(set(confirmed))
    # each confirm run is a row of the curve table under its own seed
    table = CurveTable(results / "curves.db").frame()
    assert {1, 2} <= set(table["seed"])
    # With the table shipped as a reference, a rerun checks each config against it: these are
    # the very runs, so curve for curve.
    from bench.store.reference import export_reference

    assert "reference" not in done.stdout
    export_reference(CurveTable(results / "curves.db"), results / "reference" / "tiny.jsonl", {})
    again = run("confirm", "--results-dir", str(results), "--top", "2", "--seeds", "2",
                "--max-seeds", "2")
    assert again.returncode == 0 and "0 trained, 0 from the curve table" in again.stdout
    checks = [line for line in again.stdout.splitlines() if "reference tiny.jsonl" in line]
    assert len(checks) == len(targets)
    assert all("seeds 1, 2 identical to the reference's" in line
               and line.endswith("this machine reproduces the reference bitwise") for line in checks)
    assert len(load(results, STUDY + "-confirm").get_trials()) == len(trials)


def test_seeds_a_shipped_reference_measured_are_taken_from_it_not_trained(results, searched,
                                                                          tmp_path):
    """Another clone of the same search with this race's curves shipped as a reference table:
    its confirm trains nothing, and checks nothing (no run of its own)."""
    import shutil

    from bench.store.reference import export_reference

    first = run("confirm", "--results-dir", str(results), "--top", "2", "--seeds", "2",
                "--max-seeds", "2")
    assert first.returncode == 0, first.stderr
    trained = len(load(results, STUDY + "-confirm").trials)
    shutil.copytree(searched, tmp_path / "clone")
    clone = tmp_path / "clone" / "results"
    export_reference(CurveTable(results / "curves.db"), clone / "reference" / "tiny.jsonl", {})
    again = run("confirm", "--results-dir", str(clone), "--top", "2", "--seeds", "2",
                "--max-seeds", "2")
    assert again.returncode == 0, again.stderr
    assert f"0 trained, {trained} from the curve table" in again.stdout
    assert "note: added" in again.stdout and "of the reference table" in again.stdout
    assert "reference tiny.jsonl" not in again.stdout  # nothing of its own to check


def test_interrupted_confirm_keeps_finished_runs_and_a_rerun_does_the_rest(results):
    args = [*CLI, "confirm", "--results-dir", str(results), "--top", "2", "--seeds", "2"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # A run becomes a trial when it finishes: wait for the first (minutes on a machine busy with
    # other work), so the kill lands mid-race, after something finished.
    deadline = time.monotonic() + 900
    started = False
    while not started and time.monotonic() < deadline and process.poll() is None:
        try:
            started = bool(load(results, STUDY + "-confirm").get_trials())
        except KeyError:
            pass
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate(timeout=60)
    assert started, f"no confirm run finished before the kill: {stderr[-2000:]}"
    kept = len(load(results, STUDY + "-confirm").get_trials())
    assert kept >= 1
    done = run("confirm", "--results-dir", str(results), "--top", "2", "--seeds", "2", timeout=900)
    assert done.returncode == 0, done.stderr
    confirm = load(results, STUDY + "-confirm").get_trials()
    confirmed = [(trial_config_key(t), trial_seed(t)) for t in confirm]
    searched = {(trial_config_key(t), trial_seed(t))
                for t in load(results, STUDY).get_trials(states=(TrialState.COMPLETE,))}
    assert len(confirmed) == len(set(confirmed)) and not set(confirmed) & searched
    assert len(confirm) > kept and all(t.state == TrialState.COMPLETE for t in confirm)


@pytest.mark.parametrize("args, message", [
    (("--top", "0"), "Invalid value for '--top'"),
    (("--seeds", "1"), "Invalid value for '--seeds'"),
    (("--seeds", "3", "--max-seeds", "2"), "max seeds (2) must be at least seeds (3)"),
    (("--margin", "0"), "Invalid value for '--margin'"),
    (("--study", "nope"), "no study 'nope'"),
])
def test_bad_input_is_one_line_and_exit_2(results, args, message):
    done = run("confirm", "--results-dir", str(results), *args)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_study_without_completed_trials_is_bad_input(tmp_path):
    study = optuna.create_study(study_name="empty", storage=layout.sqlite_url(tmp_path, "empty")
                                if (tmp_path / "empty").mkdir() is None else None)
    study.set_user_attr("search_settings", {"space": "faq", "epochs": 1, "validation_size": 200,
                                            "evaluations_per_epoch": 1, "seed": 0})
    done = run("confirm", "--results-dir", str(tmp_path))
    assert done.returncode == 2
    assert "has no completed trial to confirm" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_finetune_best_takes_the_config_the_report_recommends(results):
    from bench.evidence.gather import gather
    from bench.final.finetune import FinetuneSettings, recommended_trial

    assert run("confirm", "--results-dir", str(results), "--top", "2").returncode == 0
    study = load(results, STUDY)
    trial, source, note = recommended_trial(FinetuneSettings(results_dir=results), study)
    evidence = gather([study, load(results, STUDY + "-confirm")])
    use = evidence.ranked[evidence.ranked["recommended"]].iloc[0]
    assert use["heldout_seeds"] >= 2  # a confirmed config, not a single lucky seed
    assert trial_config_key(trial) == use["config_key"]
    single_best = trial_config_key(study.best_trial)
    if use["config_key"] != single_best:
        assert f"not the single best trial {study.best_trial.number}" in note
    else:
        assert note is None and source.study_name == STUDY
    report = run("report", str(results))
    assert report.returncode == 0, report.stderr
    summary = (results / "report" / "summary.md").read_text()
    assert f"`mnist-bench finetune --best --study {STUDY}` trains and tests it" in summary


def test_a_knob_whose_best_neighbours_are_over_budget_gets_the_next_configs_pair():
    """The issue's case: the best (kernel 3, pool 3/1) has no measurable kernel neighbour (kernel
    5 at pool stride 1 is over the faq space's FLOP budget), so the kernel's pair is taken around
    the search's next config, and a note says which."""
    from dataclasses import asdict

    from optuna.distributions import CategoricalDistribution, IntDistribution

    from bench.evidence.targets import targets
    from bench.evidence.settings import ConfirmSettings
    from bench.search.settings import SearchSettings
    from bench.search.spaces import load_space

    space, search = load_space("faq"), SearchSettings()
    study = optuna.create_study(direction="maximize")
    ranked = [({"kernel_size": 3, "stride": 1, "pool_size": 3, "pool_stride": 1, "fc_width": 128},
               0.99),
              ({"kernel_size": 3, "stride": 1, "pool_size": 3, "pool_stride": 2, "fc_width": 64},
               0.98)]
    distributions = {"kernel_size": IntDistribution(3, 7, step=2),
                     "stride": IntDistribution(1, 2), "pool_size": IntDistribution(1, 3),
                     "pool_stride": IntDistribution(1, 3),
                     "fc_width": CategoricalDistribution([32, 64, 128, 256, 512])}
    for params, value in ranked:
        config, train_settings = space.build(params, search.plan())
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=distributions, value=value,
            user_attrs={schema.ATTR_CONFIG: asdict(config),
                        schema.ATTR_TRAIN_SETTINGS: asdict(train_settings)}))
    chosen, notes = targets(study, space, search, ConfirmSettings(top=1))
    measured = [t.params for t in chosen]
    kernel_five = {**ranked[1][0], "kernel_size": 5}
    assert {**ranked[0][0], "kernel_size": 5} not in measured  # over the budget
    assert ranked[1][0] in measured and kernel_five in measured
    assert any(note.startswith("not measured: kernel_size=5") for note in notes)
    assert any("kernel_size: the best's neighbours cannot be measured" in note
               and "#2 config" in note for note in notes)
    # knobs whose best neighbours can be measured keep them, and need no substitute
    assert {**ranked[0][0], "fc_width": 64} in measured
    assert not any(note.startswith("fc_width:") for note in notes)


def test_confirm_at_another_budget_is_a_study_and_a_budget_of_its_own(results):
    """`confirm --epochs 2` races the top configs at two epochs in <study>-epochs2-confirm; the
    evidence ranks each budget on its own seeds, and finetune --best (12 epochs) says it used the
    budget closest to its own."""
    from bench.evidence.gather import gather
    from bench.final.finetune import FinetuneSettings, recommended_trial

    args = ["--results-dir", str(results), "--top", "3", "--no-sweep", "--max-seeds", "2"]
    assert run("confirm", *args).returncode == 0
    done = run("confirm", *args, "--epochs", "2")
    assert done.returncode == 0, done.stderr
    assert f"study {STUDY}-epochs2-confirm" in done.stdout
    longer = load(results, STUDY + "-epochs2-confirm")
    trials = longer.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 6 and not is_search(longer)
    assert {t.user_attrs[schema.ATTR_TRAIN_SETTINGS]["epochs"] for t in trials} == {2}
    assert all(len(t.user_attrs[schema.ATTR_LEARNING_CURVE]) == 4 for t in trials)  # 2 x 2 evals
    study = load(results, STUDY)
    evidence = gather([study, load(results, STUDY + "-confirm"), longer])
    assert [b.epochs for b in evidence.budgets] == [1, 2]
    assert all(b.ranked["heldout_seeds"].min() == 2 for b in evidence.budgets)
    assert evidence.agreement.iloc[0]["configs"] == 3
    _, _, note = recommended_trial(FinetuneSettings(results_dir=results), study)
    assert "decided at 2 epochs, the measured budget closest to this finetune's 12" in note
    report = run("report", str(results))
    assert report.returncode == 0, report.stderr
    budgets = pd.read_csv(results / "report" / "budgets.csv")
    assert list(budgets["budget"]) == ["1 epoch", "2 epochs"]
    summary = (results / "report" / "summary.md").read_text()
    # three configs are too few for a rank correlation (bench.evidence.budgets.MIN_CONFIGS)
    assert ("Rank agreement between 1 epoch and 2 epochs: not measured (3 configs have 2+ "
            "held-out seeds at both; it needs 5)") in summary


def test_confirm_at_two_epochs_judges_the_overfitting_claim_on_its_fc_pairs(results):
    """`confirm --epochs 2` with its sweep measures the best's FC neighbours on the same held-out
    seeds: the report judges the over-fitting claim at 2 epochs on those pairs, naming the
    budget, bases, seeds and pairs, with each step's estimate from the trials' own curves."""
    import json

    done = run("confirm", "--results-dir", str(results), "--top", "1", "--max-seeds", "2",
               "--epochs", "2")
    assert done.returncode == 0, done.stderr
    runs = {}  # base -> {(fc width, seed): last gap}, from the trials' curves
    for trial in load(results, STUDY + "-epochs2-confirm").get_trials(
            states=(TrialState.COMPLETE,)):
        config = trial.user_attrs[schema.ATTR_CONFIG]
        last = [r for r in trial.user_attrs[schema.ATTR_LEARNING_CURVE] if not r["interim"]][-1]
        base = json.dumps({k: v for k, v in config.items() if k != "fc_width"}, sort_keys=True)
        runs.setdefault(base, {})[config["fc_width"], trial_seed(trial)] = (
            last["validation_loss"] - last["train_subset_loss"])
    (paired,) = [by_run for by_run in runs.values() if len({w for w, _ in by_run}) > 1]
    widths, seeds = sorted({w for w, _ in paired}), sorted({s for _, s in paired})
    assert len(paired) == len(widths) * len(seeds) and len(seeds) == 2
    report = run("report", str(results))
    assert report.returncode == 0, report.stderr
    summary = (results / "report" / "summary.md").read_text()
    (line,) = [line for line in summary.splitlines() if line.startswith(
        "- At 2 epochs, the claim \"a large FC layer overfits\", judged by the generalization gap")]
    pairs = (len(widths) - 1) * len(seeds)
    assert f"(1 base, 2 seeds, {pairs} pairs of {len(paired)} runs)" in line
    for low, high in zip(widths, widths[1:]):
        step = sum(paired[high, s] - paired[low, s] for s in seeds) / 2  # Hodges-Lehmann of two
        assert f"FC {low} -> {high}: {step:+.4f} (no interval from one base, 2 pairs" in line
    assert "At 2 epochs, the claim" in (results / "report" / "index.html").read_text()
