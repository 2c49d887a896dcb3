"""bench/evaluate.py and `mnist-bench evaluate`: scores, saved models, bad inputs."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from bench.store import layout
from bench.final.evaluate import export_model, load_saved_model, save_weights, score
from mnist_cnn.data import ImageSet, load_test_set
from mnist_cnn.model import CNNConfig, build_model

from conftest import write_tiny_mnist

SMALL = CNNConfig(channels=(4, 8), fc_width=16)
CPU = torch.device("cpu")


class AlwaysThree(nn.Module):
    """Predicts class 3 for every image."""

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(torch.full((len(batch),), 3), 10).float()


def run_in_process(args, monkeypatch, capsys):
    """`main()` in this process: exit code (0 when it returns), stdout and stderr."""
    from bench.cli import main

    monkeypatch.setattr(sys, "argv", ["mnist-bench", *args])
    try:
        main()
        code = 0
    except SystemExit as exit_info:
        code = exit_info.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def saved_model(folder, seed=0):
    torch.manual_seed(seed)
    model = build_model(SMALL).eval()
    save_weights(model, SMALL, folder)
    export_model(model, folder / layout.FINETUNE_EXPORT)
    return model


def test_score_counts_the_confusion_matrix_by_true_and_predicted_class():
    labels = torch.tensor([3, 3, 1, 0, 3, 9])
    data = ImageSet(torch.zeros(6, 28, 28, dtype=torch.uint8), labels)
    result = score(AlwaysThree(), data, CPU)
    assert result.accuracy == pytest.approx(3 / 6)
    assert result.confusion_matrix[3][3] == 3
    assert [row[3] for row in result.confusion_matrix] == [1, 1, 0, 3, 0, 0, 0, 0, 0, 1]
    assert result.per_class_accuracy == [0.0, 0.0, 0.0, 1.0] + [0.0] * 6
    assert result.images == 6


def test_weights_and_export_load_back_to_the_same_predictions(tmp_path, tiny_mnist):
    model = saved_model(tmp_path)
    test = load_test_set(tiny_mnist)
    expected = score(model, test, CPU)
    for path in (tmp_path / layout.FINETUNE_WEIGHTS, tmp_path / layout.FINETUNE_EXPORT, tmp_path):
        loaded = score(load_saved_model(path, CPU), test, CPU)
        assert loaded.confusion_matrix == expected.confusion_matrix, path
        assert loaded.loss == pytest.approx(expected.loss, rel=1e-4)


def test_evaluate_command_prints_accuracy_and_loss_on_data_dir(tmp_path, monkeypatch, capsys):
    data = write_tiny_mnist(tmp_path / "data", train=100, test=50)
    model = saved_model(tmp_path / "model")
    expected = score(model, load_test_set(data), CPU)
    code, out, _ = run_in_process(
        ["evaluate", str(tmp_path / "model" / layout.FINETUNE_EXPORT), "--data-dir", str(data)],
        monkeypatch, capsys,
    )
    assert code == 0
    assert (f"test accuracy {expected.accuracy:.2%} (loss {expected.loss:.4f}) on 50 test images "
            f"of {data}") in out


@pytest.mark.parametrize("setup, message", [
    (lambda folder: torch.save(build_model(SMALL).state_dict(), folder / "w.pt"), "config.json"),
    (lambda folder: (folder / "m.pt2").write_bytes(b"not a program"), "torch.export"),
])
def test_evaluate_bad_model_gives_one_line_and_exit_2(setup, message, tmp_path, monkeypatch, capsys):
    setup(tmp_path)
    path = next(p for p in tmp_path.iterdir() if p.suffix in (".pt", ".pt2"))
    code, _, err = run_in_process(["evaluate", str(path)], monkeypatch, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err
