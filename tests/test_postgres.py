"""Two search processes, as on two machines, share one study on a real PostgreSQL server.

.ci/run starts the server and sets MNIST_BENCH_TEST_POSTGRES_URL; without it the test is
skipped, except under CI (CI=true), where a missing server is a failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import optuna
import pandas as pd
import pytest
import torch
from sqlalchemy.engine import make_url

from bench.store import layout, schema

URL_ENV = "MNIST_BENCH_TEST_POSTGRES_URL"
SPACE = """
[params.learning_rate]
type = "categorical"
choices = [0.003, 0.01, 0.03]

[params.fc_width]
type = "int"
low = 8
high = 32

[fixed]
channels = [4, 8]
stride = 2
batch_size = 50
"""
TRIALS = 8


@pytest.fixture
def database_url():
    """A fresh database on the server for this test, dropped afterwards."""
    url = os.environ.get(URL_ENV)
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{URL_ENV} is not set under CI: .ci/run must start PostgreSQL")
        pytest.skip(f"{URL_ENV} not set (source .ci/start-postgres to run this test)")
    import psycopg

    name = f"mnist_bench_test_{uuid.uuid4().hex[:12]}"
    server = make_url(url)
    with psycopg.connect(host=server.host, port=server.port or 5432, user=server.username,
                         password=server.password, dbname=server.database or "postgres",
                         autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def search_command(space_text: str, database_url: str, tiny_mnist, tmp_path, results: str,
                   *options: str) -> list[str]:
    space = tmp_path / "pg.toml"
    space.write_text(space_text)
    return [sys.executable, "-c", "from bench.cli import main; main()", "search",
            "--space", str(space), "--storage", database_url, "--study-name", "shared",
            "--pruner", "none", "--train-size", "1000", "--validation-size", "200",
            "--data-dir", str(tiny_mnist), "--results-dir", str(tmp_path / results), *options]


def cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from bench.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=300, cwd=cwd)


def test_two_machines_share_one_study_and_a_third_reports_and_finetunes_it(
        database_url, tiny_mnist, tmp_path):
    store = tmp_path / "shared-artifacts"  # the shared mount of a real team
    commands = [search_command(SPACE, database_url, tiny_mnist, tmp_path, f"machine-{index}",
                               "--trials", str(TRIALS), "--epochs", "1", "--artifacts", str(store))
                for index in range(2)]
    processes = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for c in commands]
    outputs = [p.communicate(timeout=300) for p in processes]
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr

    study = optuna.load_study(study_name="shared", storage=database_url)  # plain Optuna
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) == TRIALS
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(len(study.trials)))  # none lost, none duplicated
    others = [t for t in study.trials if t.state != optuna.trial.TrialState.COMPLETE]
    # the only other trials allowed: a place claimed twice in a race, ended before training
    assert all(t.state == optuna.trial.TrialState.FAIL
               and t.user_attrs[schema.ATTR_END_REASON].startswith("not run") for t in others)
    assert all(t.user_attrs[schema.ATTR_LEARNING_CURVE] for t in finished)
    assert study.user_attrs["search_settings"]["trials"] == TRIALS
    assert ":***@" in study.user_attrs["search_settings"]["storage"]  # no password stored
    # both processes trained trials, and each wrote the whole study to its own trials.csv
    assert len({t.user_attrs["worker"] for t in finished}) == 2
    for index in range(2):
        frame = pd.read_csv(tmp_path / f"machine-{index}" / "shared" / "trials.csv")
        assert set(frame["number"]) <= set(numbers) and len(frame) >= TRIALS // 2
        assert not (tmp_path / f"machine-{index}" / "artifacts").exists()
    # one weights artifact is left in the shared store: a trial with the best value (of trials
    # that tie, the one that finished first kept weights; Optuna names the lowest number best)
    [best] = [t for t in finished if schema.ATTR_WEIGHTS in t.user_attrs
              and (store / t.user_attrs[schema.ATTR_WEIGHTS]).is_file()]
    assert best.value == study.best_value
    assert [p.name for p in store.iterdir()] == [best.user_attrs[schema.ATTR_WEIGHTS]]

    third = tmp_path / "third"  # a machine with nothing of the search on its disk
    third.mkdir()
    report = cli("report", "results", "--storage", database_url, cwd=third)
    assert report.returncode == 0, report.stderr
    summary = (third / "results" / "report" / "summary.md").read_text()
    assert f"1 study, {len(study.trials)} trials" in summary  # read from PostgreSQL
    assert (third / "results" / "report" / "index.html").is_file()

    # the weights the third machine downloads are the trial's: they score its best exactly
    from bench.final.finetune import FinetuneSettings, load_starting_point
    from mnist_cnn.data import load_train_validation
    from mnist_cnn.model import build_model
    from mnist_cnn.train import evaluate

    settings = FinetuneSettings(study="shared", trial=best.number, results_dir=third / "results",
                                storage=database_url, artifacts=str(store))
    start = load_starting_point(settings, "shared")
    assert start.weights is not None
    model = build_model(start.config)
    model.load_state_dict(start.weights)
    split = load_train_validation(tiny_mnist, start.validation_size, start.split_seed)
    accuracy = evaluate(model, split.validation, torch.device("cpu")).accuracy
    assert accuracy == pytest.approx(best.value, abs=1e-9)

    options = ["--study", "shared", "--storage", database_url, "--artifacts", str(store),
               "--epochs", "1", "--data-dir", str(tiny_mnist), "--device", "cpu"]
    finetune = cli("finetune", "--trial", str(best.number), *options, cwd=third)
    assert finetune.returncode == 0, finetune.stderr
    assert "(from trial weights)" in finetune.stdout
    assert (third / "results" / "shared" / "finetune" / f"trial_{best.number}"
            / layout.FINETUNE_METRICS).is_file()
    # --best may pick a cheaper config tied with the best (its weights were superseded)
    assert cli("finetune", "--best", "--run", "best", *options, cwd=third).returncode == 0


def test_reading_commands_refuse_a_missing_study_in_one_line(database_url, tmp_path):
    optuna.create_study(study_name="present", storage=database_url)
    unreachable = make_url(database_url).set(password="secret", port=1)
    for args in (["report", "results", "--storage", database_url, "--study", "absent"],
                 ["finetune", "--best", "--storage", database_url, "--study", "absent"],
                 ["confirm", "--storage", database_url, "--study", "absent"],
                 ["report", "results", "--storage",
                  unreachable.render_as_string(hide_password=False)]):
        done = cli(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "secret" not in done.stderr
    assert not (tmp_path / "results").exists()  # nothing written


def _pid_of_a_training_worker(database_url: str, process: subprocess.Popen) -> int:
    """The pid in the "worker" attr of a running trial that has reported an evaluation."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            study = optuna.load_study(study_name="shared", storage=database_url)
        except KeyError:  # not created yet
            study = None
        for trial in study.trials if study else []:
            if trial.state.name == "RUNNING" and trial.intermediate_values \
                    and "worker" in trial.user_attrs:
                return int(trial.user_attrs["worker"].rpartition(":")[2])
        time.sleep(0.2)
    raise AssertionError("no trial started training")


def test_live_workers_recover_a_killed_workers_trial(database_url, tiny_mnist, tmp_path):
    trials = 4
    args = search_command(SPACE, database_url, tiny_mnist, tmp_path, "results",
                          "--trials", str(trials), "--epochs", "3", "--workers", "2")
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    pid = _pid_of_a_training_worker(database_url, process)
    os.kill(pid, signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "was killed by SIGKILL" in stderr
    assert "1 trial of a dead worker recovered" in stdout
    study = optuna.load_study(study_name="shared", storage=database_url)
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == trials and "RUNNING" not in states and "WAITING" not in states
    [dead] = [t for t in study.trials if t.state.name == "FAIL"
              and not t.user_attrs[schema.ATTR_END_REASON].startswith("not run")]
    assert dead.user_attrs[schema.ATTR_END_REASON].endswith(f":{pid} is gone")
    [retry] = [t for t in study.trials if t.system_attrs.get("failed_trial") == dead.number]
    assert retry.state.name == "COMPLETE" and retry.params == dead.params
