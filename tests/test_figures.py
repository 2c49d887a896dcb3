"""`mnist-bench figures`: the GPU machine's one prepared run, kept working on the CPU path."""

from __future__ import annotations

import json
import subprocess
import sys


def test_figures_run_end_to_end_on_the_cpu_and_write_every_step(tiny_mnist, tmp_path):
    out = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, "-c", "from bench.cli import main; main()", "figures", "--device", "cpu",
         "--out", str(out), "--results-dir", str(tmp_path / "results"), "--data-dir",
         str(tiny_mnist), "--trials", "3", "--workers", "1,2", "--worker-trials", "2",
         "--train-size", "300", "--validation-size", "200", "--speed-images", "128"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    steps = figures["steps"]
    assert list(steps) == ["speed", "search", "workers", "finetune", "report"]
    assert not [name for name, step in steps.items() if "error" in step], steps
    assert figures["device"] == "cpu" and figures["machine"]["torch"]
    assert steps["speed"]["ratio"] > 0 and 0 < steps["speed"]["fraction_of_matmul"] < 1.5
    assert steps["search"]["trials"] == 3 and 0 < steps["search"]["best_validation_accuracy"] <= 1
    assert {count: rate["trials"] for count, rate in steps["workers"]["workers"].items()} \
        == {"1": 2, "2": 2}
    assert all(rate["trials_per_minute"] > 0 for rate in steps["workers"]["workers"].values())
    assert steps["finetune"]["started_from"] == "trial weights"
    assert 0 < steps["finetune"]["test_accuracy"] <= 1
    assert (tmp_path / "results" / "figures-search" / "report" / "index.html").is_file()
