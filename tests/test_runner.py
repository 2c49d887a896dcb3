"""bench.search.runner through the real command: pruning, resume, weights, workers, signals, bad input."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import optuna
import pandas as pd
import pytest
from click.testing import CliRunner

from bench.store import layout, schema
from bench.cli import search
from bench.search.settings import SearchSettings
from bench.search.study import WorkerProcess

# stride 2 with pool 3 collapses the map (invalid); the small learning rates barely learn.
SPACE = """
[params.pool_size]
type = "categorical"
choices = [2, 3]

[params.learning_rate]
type = "categorical"
choices = [0.000001, 0.00001, 0.01]

[fixed]
channels = [4, 8]
stride = 2
fc_width = 16
batch_size = 50
"""
STUDY = "tiny"


@pytest.fixture
def space_file(tmp_path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(SPACE)
    return path


def command(tiny_mnist, space_file, results, *options) -> list[str]:
    return [sys.executable, "-c", "from bench.cli import main; main()", "search",
            "--space", str(space_file), "--data-dir", str(tiny_mnist), "--results-dir", str(results),
            "--study-name", STUDY, "--validation-size", "200", "--train-size", "1000",
            "--epochs", "1", "--evaluations-per-epoch", "4", *options]


def run(args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)


def load(results: Path) -> optuna.Study:
    return optuna.load_study(study_name=STUDY, storage=layout.sqlite_url(results, STUDY))


def states(study: optuna.Study) -> list[str]:
    return [t.state.name for t in study.trials]


def test_search_prunes_bad_trials_records_invalid_ones_and_keeps_best_weights(
    tiny_mnist, space_file, tmp_path
):
    results = tmp_path / "results"
    done = run(command(tiny_mnist, space_file, results, "--trials", "14", "--pruner", "sha"))
    assert done.returncode == 0, done.stderr
    study = load(results)
    assert len(study.trials) == 14 and set(states(study)) <= {"COMPLETE", "PRUNED"}
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    invalid = [t for t in pruned if schema.ATTR_INVALID_REASON in t.user_attrs]
    by_pruner = [t for t in pruned if t.user_attrs[schema.ATTR_END_REASON].startswith("pruned at")]
    assert invalid and all(t.params["pool_size"] == 3 for t in invalid)
    assert any(t.params["learning_rate"] < 0.01 for t in by_pruner)
    assert study.best_value > 0.9 and study.best_params["learning_rate"] == 0.01
    # only the best trial's weights are kept: one file in the artifact store, its artifact
    kept = sorted((results / "artifacts").iterdir())
    assert [path.name for path in kept] == [study.best_trial.user_attrs[schema.ATTR_WEIGHTS]]
    uploaded = [t for t in study.trials if schema.ATTR_WEIGHTS in t.user_attrs]
    assert len(uploaded) >= 1
    frame = pd.read_csv(results / STUDY / "trials.csv")
    assert list(frame["number"]) == list(range(14))
    assert f"{study.best_value:.2%}" in done.stdout and f"{len(pruned)} pruned" in done.stdout
    assert "best_val_acc=" in done.stderr  # the progress bar


def test_rerun_adds_exactly_the_missing_trials_and_plain_optuna_reads_it(tiny_mnist, space_file, tmp_path):
    results = tmp_path / "results"
    assert run(command(tiny_mnist, space_file, results, "--trials", "2")).returncode == 0
    assert run(command(tiny_mnist, space_file, results, "--trials", "4")).returncode == 0
    study = load(results)
    assert [t.number for t in study.trials] == [0, 1, 2, 3]
    again = run(command(tiny_mnist, space_file, results, "--trials", "4"))
    assert again.returncode == 0 and len(load(results).trials) == 4
    assert "4 trials finished" in again.stdout
    assert "--trials 4 on a study with 4 finished trials ran none" in again.stdout
    fewer = run(command(tiny_mnist, space_file, results, "--trials", "2"))
    assert "--trials 2 on a study with 4 finished trials ran none" in fewer.stdout
    refused = run(command(tiny_mnist, space_file, results, "--trials", "5", "--epochs", "2"))
    assert refused.returncode == 2 and "epochs=1" in refused.stderr
    assert len(load(results).trials) == 4
    # plain Optuna reads the study: -I (isolated) from a folder without the project
    script = (f"import optuna, sys; s = optuna.load_study(study_name={STUDY!r}, "
              f"storage={layout.sqlite_url(results, STUDY)!r}); "
              "assert 'bench' not in sys.modules and 'mnist_cnn' not in sys.modules; "
              "print(len(s.trials), s.user_attrs['search_settings']['epochs'], "
              "sorted(s.trials[0].user_attrs)[0])")
    done = run([sys.executable, "-I", "-c", script], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["4", "1", "config"]


def test_workers_share_one_study_with_an_exact_trial_count(tiny_mnist, space_file, tmp_path):
    results = tmp_path / "results"
    done = run(command(tiny_mnist, space_file, results, "--trials", "6", "--workers", "2"))
    assert done.returncode == 0, done.stderr
    study = load(results)
    counted = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(counted) == 6 and len({t.number for t in study.trials}) == len(study.trials)
    assert "RUNNING" not in states(study) and "WAITING" not in states(study)
    assert len(pd.read_csv(results / STUDY / "trials.csv")) == len(study.trials)


def _wait_for_training(results: Path, process: subprocess.Popen) -> None:
    """Until a running trial has reported an evaluation (so the signal lands mid-training).

    Polls with short sqlite3 connections: a reader must not hold the database open."""
    database = results / STUDY / "study.db"
    query = ("SELECT COUNT(*) FROM trial_intermediate_values v JOIN trials t "
             "ON v.trial_id = t.trial_id WHERE t.state = 'RUNNING'")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        if database.exists():
            connection = sqlite3.connect(database, timeout=5)
            try:
                if connection.execute(query).fetchone()[0] > 0:
                    return
            except sqlite3.OperationalError:  # tables not created yet
                pass
            finally:
                connection.close()
        time.sleep(0.1)
    raise AssertionError("no trial started training")


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_fails_the_running_trial_and_a_rerun_resumes(
    tiny_mnist, space_file, tmp_path, signum, code
):
    results = tmp_path / "results"
    # 8 epochs x 4 evaluations: the trial is still training when the signal arrives
    args = command(tiny_mnist, space_file, results, "--trials", "3", "--epochs", "8")
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_training(results, process)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    study = load(results)
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert len(failed) == 1 and "RUNNING" not in states(study)
    assert failed[0].user_attrs[schema.ATTR_END_REASON] == f"interrupted by {signum.name}"
    assert failed[0].user_attrs[schema.ATTR_LEARNING_CURVE]  # what it trained is kept
    frame = pd.read_csv(results / STUDY / "trials.csv")
    assert "FAIL" in set(frame["state"]) and len(frame) == len(study.trials)
    assert f"stopped by {signum.name}" in stdout
    if signum == signal.SIGINT:
        resumed = run(args)
        assert resumed.returncode == 0, resumed.stderr
        study = load(results)
        assert len([t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]) == 3


def counted(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]


@pytest.mark.parametrize("heartbeat, pause", [
    ([], 0),  # rerun at once: long before the default 60 s grace period ends
    (["--heartbeat-interval", "1", "--grace-period", "2"], 3),  # rerun once the heartbeat is stale
])
def test_a_killed_search_is_healed_by_its_rerun(tiny_mnist, space_file, tmp_path, heartbeat, pause):
    results = tmp_path / "results"
    args = command(tiny_mnist, space_file, results, "--trials", "3", "--epochs", "3", *heartbeat)
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_training(results, process)
    process.kill()
    process.communicate(timeout=60)
    killed_at = datetime.now()
    assert states(load(results)).count("RUNNING") == 1  # what a SIGKILL leaves behind
    time.sleep(pause)
    resumed = run(args)
    assert resumed.returncode == 0, resumed.stderr
    study = load(results)
    assert len(counted(study)) == 3
    assert "RUNNING" not in states(study) and "WAITING" not in states(study)
    [dead] = [t for t in study.trials if t.state.name == "FAIL"]
    assert dead.user_attrs[schema.ATTR_END_REASON] == \
        f"worker {socket.gethostname()}:{process.pid} is gone"
    assert dead.datetime_complete - killed_at < timedelta(seconds=30 + pause)  # not after 60 s
    [retry] = [t for t in study.trials if t.system_attrs.get("failed_trial") == dead.number]
    assert retry in counted(study) and retry.params == dead.params
    assert retry.user_attrs["worker"] != dead.user_attrs["worker"]  # run afresh by the rerun
    assert "3 trials finished" in resumed.stdout
    assert "1 trial of a dead worker recovered" in resumed.stdout


def test_a_queued_trial_is_run_and_not_counted_as_done(tiny_mnist, space_file, tmp_path):
    """A WAITING trial (Optuna's retry of a stale trial, or one enqueued) takes a free place."""
    results = tmp_path / "results"
    assert run(command(tiny_mnist, space_file, results, "--trials", "1")).returncode == 0
    load(results).enqueue_trial({"pool_size": 2, "learning_rate": 0.01})
    done = run(command(tiny_mnist, space_file, results, "--trials", "2"))
    assert done.returncode == 0, done.stderr
    study = load(results)
    assert len(counted(study)) == 2 and len(study.trials) == 2
    assert study.trials[1].params == {"pool_size": 2, "learning_rate": 0.01}
    assert "WAITING" not in states(study) and "recovered" not in done.stdout


def test_another_hosts_trial_is_waited_for_until_its_heartbeat_expires(
    tiny_mnist, space_file, tmp_path
):
    results = tmp_path / "results"
    args = command(tiny_mnist, space_file, results, "--heartbeat-interval", "1",
                   "--grace-period", "2")
    assert run([*args, "--trials", "1"]).returncode == 0
    # a worker on another machine claims the last place, beats its heart while the rerun
    # waits for it, and dies
    storage = optuna.storages.RDBStorage(layout.sqlite_url(results, STUDY))
    study = optuna.load_study(study_name=STUDY, storage=storage)
    remote = study.ask()
    remote.set_user_attr("worker", "elsewhere:1")
    trial_id = storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name(STUDY), remote.number)
    storage.record_heartbeat(trial_id)
    errors = tmp_path / "stderr.txt"
    with open(errors, "w") as stderr_file:
        rerun = subprocess.Popen([*args, "--trials", "2"], stdout=subprocess.PIPE,
                                 stderr=stderr_file, text=True)
        deadline = time.monotonic() + 60
        while "waiting for trial" not in errors.read_text() and time.monotonic() < deadline:
            storage.record_heartbeat(trial_id)
            time.sleep(0.5)
        stdout, _ = rerun.communicate(timeout=120)
    stderr = errors.read_text()
    assert rerun.returncode == 0, stderr
    assert f"waiting for trial {remote.number} on worker elsewhere:1" in stderr
    study = load(results)
    assert states(study)[remote.number] == "FAIL" and len(counted(study)) == 2
    assert "RUNNING" not in states(study) and "WAITING" not in states(study)
    assert "1 trial of a dead worker recovered" in stdout


def test_a_worker_is_gone_only_when_provably_so(tmp_path):
    """Pids are reused: a live process with the dead worker's pid but another start time is not it."""
    here = WorkerProcess.this()
    assert here.is_local() and not here.is_gone()
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True)
    gone = WorkerProcess(here.host, int(ended.stdout), here.process)
    assert gone.is_gone()
    boot, namespace, started = here.process.split(" ")
    reused = WorkerProcess(here.host, here.pid, f"{boot} {namespace} {int(started) - 1}")
    assert reused.is_gone()
    elsewhere = [WorkerProcess("another-host", gone.pid, gone.process),  # only its heartbeat tells
                 WorkerProcess(here.host, gone.pid, f"another-boot {namespace} {started}"),
                 WorkerProcess(here.host, gone.pid, None)]
    assert not any(worker.is_gone() or worker.is_local() for worker in elsewhere)


@pytest.mark.parametrize("options, message", [
    (["--sampler", "bogus"], "--sampler"),
    (["--trials", "0"], "--trials"),
    (["--interim-validation-size", "0"], "--interim-validation-size"),
    (["--precision", "fp16"], "--precision"),
    (["--storage", "nosuchdb://x"], "cannot open storage"),
    (["--storage", "postgresql://me:secret@127.0.0.1:1/none"], "cannot open storage"),
    (["--space", "nonesuch"], "unknown space"),
    (["--artifacts", "{file}/store"], "cannot create artifact folder"),
    (["--train-size", "999999"], "is more than the 1,000 training images left"),
])
def test_bad_input_is_one_line_and_exit_2_before_training(tiny_mnist, space_file, tmp_path,
                                                           options, message):
    results = tmp_path / "results"
    (tmp_path / "file").write_text("not a folder")
    options = [option.format(file=tmp_path / "file") for option in options]
    done = run(command(tiny_mnist, space_file, results, *options))
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "secret" not in done.stderr
    database = results / STUDY / "study.db"
    assert not database.exists() or not optuna.get_all_study_names(layout.sqlite_url(results, STUDY))
    assert not (results / "artifacts").exists()


def test_results_dir_that_is_a_file_is_bad_input(tiny_mnist, space_file, tmp_path):
    results = tmp_path / "results"
    results.write_text("not a folder")
    done = run(command(tiny_mnist, space_file, results))
    assert done.returncode == 2 and "--results-dir" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_cli_defaults_are_the_settings_defaults():
    """The command's shown defaults must be SearchSettings' defaults (one source of truth)."""
    defaults = {p.name: p.default for p in search.params}
    settings = SearchSettings()
    for name in ("trials", "space", "sampler", "pruner", "epochs", "train_size", "validation_size",
                 "evaluations_per_epoch", "seed", "timeout", "study_name", "storage"):
        assert defaults[name] == getattr(settings, name), name
    # --workers has none: compare's default differs (a process per core); its help says both
    assert f"Default: {settings.workers} (search, grid" in " ".join(
        CliRunner().invoke(search, ["--help"], terminal_width=200).output.split())
