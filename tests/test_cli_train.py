"""`mnist-bench train` and `speed`: real runs through the installed console script."""

import json
import os
import subprocess
import sys

import pytest

CLI = [sys.executable, "-c", "from bench.cli import main; main()"]


def run_cli(*args, env=None):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=300)


def run_in_process(args, monkeypatch, capsys):
    """`main()` in this process: exit code and stderr, as the console script gives them."""
    from bench.cli import main

    monkeypatch.setattr(sys, "argv", ["mnist-bench", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--kernel-size", "0"], "--kernel-size"),
        (["--stride", "2", "--pool-size", "3"], "block 2"),
        (["--channels", "32,x"], "--channels"),
        (["--channels", "8,16,32", "--kernel-size", "9", "--padding", "valid"], "block 3"),
        (["--data-dir", "/no/such/folder"], "/no/such/folder"),
        (["--pool-type", "median"], "--pool-type"),
    ],
)
def test_bad_options_give_one_line_and_exit_2(args, message, tmp_path, monkeypatch, capsys):
    code, stderr = run_in_process(["train", "--results-dir", str(tmp_path), *args], monkeypatch, capsys)
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0]


def test_results_dir_that_is_a_file_is_rejected(tmp_path):
    """Through the real console entry point: one line, exit 2, no traceback."""
    (tmp_path / "file").write_text("x")
    result = run_cli("train", "--results-dir", str(tmp_path / "file"))
    assert result.returncode == 2 and "not a folder" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_train_writes_summary(tiny_mnist, tmp_path):
    result = run_cli("train", "--data-dir", str(tiny_mnist), "--results-dir", str(tmp_path),
                     "--epochs", "2", "--validation-size", "200", "--channels", "8,16", "--fc-width", "32")
    assert result.returncode == 0, result.stderr
    assert "validation accuracy" in result.stdout
    (path,) = (tmp_path / "train").glob("run-*.json")
    summary = json.loads(path.read_text())
    assert summary["validation_accuracy"] > 0.8
    assert summary["config"]["channels"] == [8, 16]
    assert len(summary["history"]) == 2
    assert summary["parameters"] > 0 and summary["flops_per_image"] > 0


def test_train_on_a_few_hundred_real_images(tmp_path):
    """The shipped real MNIST, end to end through the CLI; far above chance after 3 epochs."""
    result = run_cli("train", "--results-dir", str(tmp_path), "--epochs", "3",
                     "--train-size", "600", "--validation-size", "300")
    assert result.returncode == 0, result.stderr
    (path,) = (tmp_path / "train").glob("run-*.json")
    summary = json.loads(path.read_text())
    assert summary["train_size"] == 600
    assert summary["validation_accuracy"] > 0.6


@pytest.mark.parametrize("precision", ["fp32", "bf16", "emulated bf16"])
def test_speed_benchmark_prints_ratio_and_fraction_of_matmul_at_its_precision(tiny_mnist, precision):
    from mnist_cnn.cpu import cpu_bf16_support

    options = ["--precision", "bf16"] if "bf16" in precision else []  # fp32: the CPU's default
    env = None
    if precision == "emulated bf16":  # as on a CPU without native bf16, whatever this one has
        env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    result = run_cli("speed", "--data-dir", str(tiny_mnist), "--images", "256", "--repeats", "1",
                     *options, env=env)
    assert result.returncode == 0, result.stderr
    assert f"index slices, {precision.split()[-1]})" in result.stdout
    assert "speed-up:" in result.stdout and "of this machine's float32 matmul" in result.stdout
    emulated = precision == "emulated bf16" or (precision == "bf16"
                                                 and not cpu_bf16_support().native)
    assert ("of its bf16 matmul" in result.stdout) == (precision == "bf16" and not emulated)
    assert ("bf16 is emulated here" in result.stdout) == emulated
    assert "(0 GFLOP/s)" not in result.stdout and "= 0.0%" not in result.stdout


def test_bf16_where_it_would_be_emulated_is_refused_in_one_line_unless_allowed(tiny_mnist, tmp_path):
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    train = ["train", "--data-dir", str(tiny_mnist), "--results-dir", str(tmp_path),
             "--validation-size", "200", "--train-size", "128", "--fc-width", "16"]
    refused = run_cli(*train, "--precision", "bf16", env=env)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("Error: ")
    assert "is emulated on this CPU (" in refused.stderr
    assert "x slower than fp32" in refused.stderr and "--allow-emulated-bf16" in refused.stderr
    assert not (tmp_path / "train").exists()
    allowed = run_cli(*train, "--precision", "bf16", "--allow-emulated-bf16", env=env)
    assert allowed.returncode == 0, allowed.stderr
    (path,) = (tmp_path / "train").glob("run-*.json")
    assert json.loads(path.read_text())["train_settings"]["precision"] == "bf16"


def test_preset_with_repeats_tests_every_seed_once_after_training(tiny_mnist, tmp_path):
    from mnist_cnn.presets import preset

    result = run_cli("train", "--preset", "speedrun", "--data-dir", str(tiny_mnist),
                     "--results-dir", str(tmp_path), "--validation-size", "200",
                     "--repeats", "2", "--test", "--fc-width", "32")
    assert result.returncode == 0, result.stderr
    (path,) = (tmp_path / "train").glob("run-*.json")
    summary = json.loads(path.read_text())
    speedrun = preset("speedrun")
    assert summary["preset"] == "speedrun"
    assert summary["config"]["fc_width"] == 32  # an option given overrides the preset's value
    assert summary["config"]["channels"] == list(speedrun.config.channels)
    assert summary["train_settings"]["lr_schedule"] == speedrun.settings.lr_schedule
    assert [s["seed"] for s in summary["seeds"]] == [0, 1]
    assert all(len(s["history"]) == speedrun.settings.epochs for s in summary["seeds"])
    tests = [s["test_accuracy"] for s in summary["seeds"]]
    assert summary["test_accuracy_mean"] == pytest.approx(sum(tests) / 2) and min(tests) > 0.8
    assert "n=2 seeds" in result.stdout and "s of training per seed" in result.stdout


def test_unknown_preset_is_bad_input(tmp_path, monkeypatch, capsys):
    code, stderr = run_in_process(["train", "--preset", "nope", "--results-dir", str(tmp_path)],
                                  monkeypatch, capsys)
    assert code == 2 and "unknown preset 'nope'" in stderr


def test_train_without_options_is_the_tutorial_the_dataclasses_describe():
    """Every default of `train` comes from CNNConfig, TrainSettings or TrainRun, parsed as the
    command parses it, so a default changed in the library changes the command with it."""
    from dataclasses import fields

    from bench.cli import train
    from bench.final.train_run import TrainRun
    from mnist_cnn.model import CNNConfig
    from mnist_cnn.train import TrainSettings

    parsed = train.make_context("train", []).params
    for settings, skipped in ((CNNConfig(), {"conv_blocks"}),
                              (TrainSettings(), {"augment", "interim_validation_size", "precision"}),
                              (TrainRun(CNNConfig(), TrainSettings()),
                               {"config", "settings", "data_dir", "device", "test", "preset"})):
        for field in fields(settings):
            if field.name not in skipped:
                assert parsed[field.name] == getattr(settings, field.name), field.name
    assert parsed["channels"] == (32, 64)  # the text default parses to the tuple
