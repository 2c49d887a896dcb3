"""Saved models and their test-set score: export, load back, measure.

The export is a `torch.export` program (`.pt2`) that takes pixels in [0, 1] shaped
[N, 1, 28, 28] and returns logits; `torch.export.load(path).module()` runs it without this
project's code. (TorchScript, the other option, is deprecated in this torch.)
"""

from __future__ import annotations

import json
import logging
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from bench.store.damage import error_line
from bench.store.layout import FINETUNE_CONFIG, FINETUNE_EXPORT, FINETUNE_WEIGHTS
from mnist_cnn.data import MEAN, STD, DataError, ImageSet, describe_data, load_test_set
from mnist_cnn.model import NUM_CLASSES, CNNConfig, build_model
from mnist_cnn.train import evaluate, pick_device, prepare_model

WEIGHT_SUFFIXES = (".pt", ".pth")  # a state_dict saved by torch.save


@dataclass(frozen=True)
class TestEvaluation:
    """A model's score on held-out images; `confusion_matrix[true][predicted]` counts images."""

    loss: float
    accuracy: float
    per_class_accuracy: list[float]
    confusion_matrix: list[list[int]]
    images: int


def score(model: nn.Module, data: ImageSet, device: torch.device,
          precision: str | None = None) -> TestEvaluation:
    """Loss, accuracy, per-class accuracy and confusion matrix of `model` on `data`."""
    evaluation = evaluate(model, data, device, precision=precision)
    labels = data.labels.cpu()
    confusion = torch.bincount(
        labels * NUM_CLASSES + evaluation.predictions, minlength=NUM_CLASSES**2
    ).reshape(NUM_CLASSES, NUM_CLASSES)
    per_class = confusion.diagonal() / confusion.sum(1).clamp(min=1)
    return TestEvaluation(
        loss=evaluation.loss,
        accuracy=evaluation.accuracy,
        per_class_accuracy=per_class.tolist(),
        confusion_matrix=confusion.tolist(),
        images=len(data),
    )


class PixelInput(nn.Module):
    """The exported interface: pixels in [0, 1], so a user needs no knowledge of our normalization."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model((pixels - MEAN) / STD)


class NormalizedInput(nn.Module):
    """Lets a loaded export take the normalized input that `mnist_cnn.train.evaluate` feeds."""

    def __init__(self, exported: nn.Module) -> None:
        super().__init__()
        self.exported = exported

    def forward(self, normalized: torch.Tensor) -> torch.Tensor:
        return self.exported(normalized * STD + MEAN)

    def train(self, mode: bool = True) -> "NormalizedInput":
        return self  # an exported graph is fixed in eval mode and refuses .train()/.eval()


def export_model(model: nn.Module, path: Path) -> Path:
    """Save `model` (a CPU copy, batch size free) as a torch.export program."""
    cpu_model = PixelInput(model).to("cpu", memory_format=torch.contiguous_format).eval()
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(
        cpu_model, (torch.rand(2, 1, 28, 28),), dynamic_shapes=({0: batch},)
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, path)
    return path


def save_weights(model: nn.Module, config: CNNConfig, folder: Path) -> None:
    """The state_dict (CPU, contiguous) and its config as JSON, side by side."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, folder / FINETUNE_WEIGHTS)
    (folder / FINETUNE_CONFIG).write_text(json.dumps(asdict(config), indent=2))


def load_saved_model(path: Path, device: torch.device) -> nn.Module:
    """A model that takes normalized input, from a `.pt2` export, a weights file with
    config.json beside it, or a finetune run folder (its export)."""
    path = Path(path)
    if path.is_dir():
        path = path / FINETUNE_EXPORT
    if not path.is_file():
        raise DataError(f"no saved model at {path}")
    if path.suffix == ".pt2":
        quiet = logging.getLogger("torch.export")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # it logs a traceback before raising; our error is one line
        try:
            exported = torch.export.load(path).module()
        except Exception as error:
            raise DataError(f"{path} is not a torch.export program: {error}") from None
        finally:
            quiet.setLevel(level)
        return NormalizedInput(exported.to(device))
    if path.suffix not in WEIGHT_SUFFIXES:
        raise DataError(f"{path} is not a saved model: give a {FINETUNE_EXPORT} export, a "
                        f"{FINETUNE_WEIGHTS} with {FINETUNE_CONFIG} beside it, or a finetune run "
                        "folder")
    config_path = path.with_name(FINETUNE_CONFIG)
    if not config_path.is_file():
        raise DataError(f"weights {path} need {config_path.name} beside them")
    try:
        config_dict = json.loads(config_path.read_text())
        model = build_model(CNNConfig(**config_dict))
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except (OSError, RuntimeError, TypeError, ValueError, EOFError, pickle.UnpicklingError) as error:
        raise DataError(f"cannot load {path} with {config_path.name}: "
                        f"{error_line(error)}") from None
    return prepare_model(model, device)


def evaluate_saved_model(
    path: Path, data_dir: Path | None = None, device: str | None = None
) -> TestEvaluation:
    """Score a saved model on the test files of `data_dir` (the shipped MNIST by default)."""
    chosen = pick_device(device)
    model = load_saved_model(path, chosen)
    return score(model, load_test_set(data_dir), chosen)


def render(evaluation: TestEvaluation, data_dir: Path | None = None) -> str:
    """The score, saying on how many test images of which data it was measured."""
    per_class = " ".join(f"{d}:{a:.2%}" for d, a in enumerate(evaluation.per_class_accuracy))
    return (
        f"test accuracy {evaluation.accuracy:.2%} (loss {evaluation.loss:.4f}) "
        f"on {evaluation.images:,} test images of {describe_data(data_dir)}\n"
        f"per class {per_class}"
    )
