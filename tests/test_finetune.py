"""bench/finetune.py: trial picking, early stopping, resume, repeats, and a test set read last."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import optuna
import pytest
import torch

from bench.store import layout, schema
from bench.store.artifacts import open_artifact_store, upload_weights
from bench.final.finetune import FinetuneSettings, load_starting_point, render, run_finetune
from mnist_cnn.model import CNNConfig, build_model
from mnist_cnn.train import TrainSettings, checkpoint_history

SMALL = CNNConfig(channels=(4, 8), fc_width=16)
CLI = [sys.executable, "-c", "from bench.cli import main; main()"]


def make_study(results: Path, name: str = "faq", finished: bool = True, weights: bool = True,
               config: CNNConfig = SMALL, data: str | None = None) -> Path:
    """A study as the search writes it: one trial with config, settings and kept weights."""
    layout.study_dir(results, name).mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(study_name=name, storage=layout.sqlite_url(results, name),
                                direction="maximize")
    study.set_user_attr("search_settings", {"validation_size": 200, "seed": 0})
    attrs = {
        schema.ATTR_CONFIG: {**asdict(config), "channels": list(config.channels)},
        schema.ATTR_TRAIN_SETTINGS: asdict(TrainSettings(epochs=1, learning_rate=3e-3)),
        **({schema.ATTR_FIDELITY: {"data": data}} if data else {}),
    }
    state = optuna.trial.TrialState.COMPLETE if finished else optuna.trial.TrialState.PRUNED
    trial = study.ask()
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    if weights:  # kept as the search keeps them: an artifact in the default store
        torch.manual_seed(0)
        upload_weights(trial, build_model(config).state_dict(),
                       open_artifact_store(layout.artifacts_dir(results)))
    if finished:
        study.tell(trial, 0.5)
    else:
        trial.report(0.3, 0)
        study.tell(trial, state=state)
    return results


def settings(results: Path, data: Path, **overrides) -> FinetuneSettings:
    values = dict(results_dir=results, data_dir=data, epochs=2, learning_rate=3e-3, device="cpu")
    return FinetuneSettings(**{**values, **overrides})


def run_in_process(args, monkeypatch, capsys):
    from bench.cli import main

    monkeypatch.setattr(sys, "argv", ["mnist-bench", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err


def test_repeats_report_mean_and_spread(tmp_path, tiny_mnist):
    results = make_study(tmp_path / "results")
    metrics, run_dir = run_finetune(settings(results, tiny_mnist, repeats=2))

    assert json.loads((run_dir / layout.FINETUNE_METRICS).read_text()) == metrics
    repeats = metrics["repeats"]
    assert [r["seed"] for r in repeats] == [0, 1]
    assert repeats[0]["history"] != repeats[1]["history"]  # two real trainings, not one copied
    accuracies = [r["test_accuracy"] for r in repeats]
    assert metrics["test_accuracy_mean"] == pytest.approx(statistics.fmean(accuracies))
    assert metrics["test_accuracy_std"] == pytest.approx(statistics.stdev(accuracies))
    assert metrics["test_accuracy_mean"] > 0.5  # it learned the tiny data (chance is 0.1)
    assert metrics["started_from"] == "trial weights"
    assert metrics["train_settings"]["learning_rate"] == 3e-3
    confusion = torch.tensor(metrics["confusion_matrix"])
    assert confusion.shape == (10, 10) and confusion.sum() == 200
    chosen = [r for r in repeats if r["seed"] == metrics["exported_seed"]][0]
    assert confusion.diagonal().sum() / 200 == pytest.approx(chosen["test_accuracy"])
    assert len(metrics["per_class_accuracy"]) == 10
    for key in ("parameters", "flops_per_image", "latency_ms_batch1",
                "inference_images_per_second", "seconds", "trial_number", "config"):
        assert metrics[key] is not None
    assert metrics["parameters"] == sum(p.numel() for p in build_model(SMALL).parameters())
    assert metrics["test_images"] == 200 and metrics["test_data"] == str(tiny_mnist)
    assert metrics["notes"] == []  # the trial recorded no data: nothing to compare


def test_other_data_than_the_trials_is_said_with_the_test_images(tmp_path, tiny_mnist):
    results = make_study(tmp_path / "results", data="shipped")
    metrics, run_dir = run_finetune(settings(results, tiny_mnist, epochs=1))
    assert any("on the shipped MNIST; this finetune trains and tests on " + str(tiny_mnist) in note
               for note in metrics["notes"])
    assert f"on 200 test images of {tiny_mnist}" in render(metrics, run_dir)


def test_default_lr_is_a_third_of_the_trials_when_starting_from_its_weights(tmp_path, tiny_mnist):
    results = make_study(tmp_path / "results")
    metrics, _ = run_finetune(settings(results, tiny_mnist, epochs=1, learning_rate=None))
    assert metrics["train_settings"]["learning_rate"] == pytest.approx(1e-3)
    assert metrics["train_settings"]["lr_schedule"] == "cosine"


def test_test_split_is_read_only_after_all_training(tmp_path, tiny_mnist, monkeypatch):
    import bench.final.finetune
    import mnist_cnn.data

    events = []
    real_read, real_train = mnist_cnn.data._read_mnist, bench.final.finetune.train

    def recording_read(data_dir, train):
        events.append("read train files" if train else "read test files")
        return real_read(data_dir, train)

    def recording_train(*args, **kwargs):
        events.append("train")
        return real_train(*args, **kwargs)

    monkeypatch.setattr(mnist_cnn.data, "_read_mnist", recording_read)
    monkeypatch.setattr(bench.final.finetune, "train", recording_train)
    results = make_study(tmp_path / "results")
    run_finetune(settings(results, tiny_mnist, repeats=2, final_pass=True, epochs=1))

    assert events.count("read test files") == 1
    assert events.count("train") == 4  # two seeds, each trained then given a final pass
    assert events[-1] == "read test files"


def test_early_stopping_keeps_the_best_validation_weights(tmp_path, tiny_mnist):
    results = make_study(tmp_path / "results")
    # a huge constant rate wrecks the network after its first epochs, so validation stops rising
    metrics, run_dir = run_finetune(settings(results, tiny_mnist, epochs=8, patience=1,
                                             learning_rate=0.5, schedule="constant"))
    repeat = metrics["repeats"][0]
    accuracies = [h["validation_accuracy"] for h in repeat["history"]]
    assert repeat["stopped_early"] and len(accuracies) < 8
    assert repeat["best_validation_accuracy"] == max(accuracies)
    best = torch.load(layout.finetune_checkpoint(run_dir, 0, "best"), weights_only=True)
    kept = torch.load(run_dir / layout.FINETUNE_WEIGHTS, weights_only=True)
    assert all(torch.equal(best[k], kept[k]) for k in best)


def test_export_loads_without_project_code_and_predicts_like_the_model(tmp_path, tiny_mnist):
    from bench.final.evaluate import evaluate_saved_model, load_saved_model
    from mnist_cnn.data import load_test_set, normalize
    from mnist_cnn.train import evaluate

    results = make_study(tmp_path / "results")
    metrics, run_dir = run_finetune(settings(results, tiny_mnist))
    test = load_test_set(tiny_mnist)
    pixels = tmp_path / "pixels.pt"
    torch.save(test.images.unsqueeze(1).float() / 255, pixels)
    script = (
        "import sys, torch\n"
        f"model = torch.export.load({str(run_dir / layout.FINETUNE_EXPORT)!r}).module()\n"
        f"predicted = model(torch.load({str(pixels)!r})).argmax(1)\n"
        "assert not any(m.split('.')[0] in ('bench', 'mnist_cnn') for m in sys.modules)\n"
        "print(','.join(map(str, predicted.tolist())))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    exported = torch.tensor([int(x) for x in done.stdout.strip().split(",")])

    model = load_saved_model(run_dir / layout.FINETUNE_WEIGHTS, torch.device("cpu"))
    assert torch.equal(exported, evaluate(model, test, torch.device("cpu")).predictions)
    assert torch.equal(exported, model(normalize(test.images)).argmax(1))
    from_export = evaluate_saved_model(run_dir / layout.FINETUNE_EXPORT, tiny_mnist, "cpu")
    assert from_export.accuracy == pytest.approx(metrics["repeats"][0]["test_accuracy"])


def test_resume_after_a_killed_run_continues_from_its_checkpoint(tmp_path, tiny_mnist):
    results = make_study(tmp_path / "results", config=CNNConfig(channels=(8, 16), fc_width=32))
    epochs = 20
    args = ["finetune", "--best", "--results-dir", str(results), "--data-dir", str(tiny_mnist),
            "--epochs", str(epochs), "--patience", str(epochs), "--lr", "3e-3", "--device", "cpu"]
    run_dir = layout.finetune_dir(results, "faq", "trial_0")
    last = layout.finetune_checkpoint(run_dir, 0, "last")
    process = subprocess.Popen([*CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "MNIST_BENCH_CACHE": str(tmp_path / "cache")})
    deadline = time.monotonic() + 120
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = checkpoint_history(last)
    assert 1 <= len(done) < epochs, "the run must be killed between its first and last epoch"
    assert not (run_dir / layout.FINETUNE_METRICS).exists()

    code = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)
    assert code.returncode == 2 and "--resume" in code.stderr  # no silent restart over it

    metrics, _ = run_finetune(settings(results, tiny_mnist, epochs=epochs, patience=epochs,
                                       resume=True))
    history = metrics["repeats"][0]["history"]
    assert [h["epoch"] for h in history] == list(range(1, epochs + 1))
    # the killed run's epochs are kept as they were (a restart would retime them)
    assert history[: len(done)] == [asdict(r) for r in done]


def test_resume_refuses_other_training_settings(tmp_path, tiny_mnist):
    results = make_study(tmp_path / "results")
    run_finetune(settings(results, tiny_mnist, epochs=1))
    with pytest.raises(ValueError, match="epochs"):
        run_finetune(settings(results, tiny_mnist, epochs=3, resume=True))
    with pytest.raises(ValueError, match="precision"):
        run_finetune(settings(results, tiny_mnist, epochs=1, resume=True, precision="bf16"))


def test_bf16_finetune_trains_and_tests_in_bf16(tmp_path, tiny_mnist):
    from bench.final.evaluate import score
    from mnist_cnn.data import load_test_set

    results = make_study(tmp_path / "results")
    metrics, run_dir = run_finetune(settings(results, tiny_mnist, epochs=1, precision="bf16"))
    assert metrics["train_settings"]["precision"] == "bf16"
    assert metrics["finetune_settings"]["precision"] == "bf16"
    model = build_model(SMALL)
    model.load_state_dict(torch.load(run_dir / layout.FINETUNE_WEIGHTS, weights_only=True))
    test = load_test_set(tiny_mnist)
    cpu = torch.device("cpu")
    assert score(model, test, cpu, "bf16").loss == pytest.approx(metrics["test_loss"], rel=1e-6)
    assert score(model, test, cpu).loss != pytest.approx(metrics["test_loss"], rel=1e-6)


def test_best_on_a_study_without_finished_trial_exits_2(tmp_path, tiny_mnist, monkeypatch, capsys):
    results = make_study(tmp_path / "results", finished=False)
    code, stderr = run_in_process(["finetune", "--best", "--results-dir", str(results),
                                   "--data-dir", str(tiny_mnist)], monkeypatch, capsys)
    assert code == 2
    assert stderr.strip().splitlines() == [
        "Error: study 'faq' has no finished trial to finetune; "
        "let `mnist-bench search` finish one first"
    ]


def test_study_must_be_named_when_there_are_several(tmp_path, tiny_mnist, monkeypatch, capsys):
    results = make_study(make_study(tmp_path / "results", "alpha"), "beta")
    code, stderr = run_in_process(["finetune", "--best", "--results-dir", str(results)],
                                  monkeypatch, capsys)
    assert code == 2
    assert "--study" in stderr and "alpha, beta" in stderr and len(stderr.strip().splitlines()) == 1


def test_weights_missing_from_the_artifact_store_start_from_scratch_with_a_note(tmp_path, tiny_mnist):
    results = make_study(tmp_path / "results")
    elsewhere = tmp_path / "empty-store"
    start = load_starting_point(settings(results, tiny_mnist, artifacts=str(elsewhere)), "faq")
    assert start.weights is None and "does not have them" in start.notes[0]
    found = load_starting_point(settings(results, tiny_mnist), "faq")  # the default store
    assert found.weights is not None and found.notes == ()
    assert not elsewhere.exists()  # reading never creates a store
