"""Training and evaluation: one visible loop over index slices of on-device tensors."""

from __future__ import annotations

import math
import os
import pickle
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from mnist_cnn.data import ImageSet, TrainValidationSplit, normalize
from mnist_cnn.model import CNNConfig, build_model

LR_SCHEDULES = ("constant", "cosine", "onecycle")
# "bf16": convolutions and matrix products under bf16 autocast (weights, optimizer and loss stay
# float32); "fp32": float32 throughout. None: the device's default, bf16 on CUDA and fp32 on the CPU.
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class TrainSettings:
    """How to train; the defaults are the tutorial's Adam at lr 1e-3, batch 64."""

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    evaluations_per_epoch: int = 1
    lr_schedule: str = "constant"
    augment: bool = False
    # Evaluations before an epoch's end score only the first N validation images (the split is
    # shuffled, so a fixed random subset): a pruner's rough ranking at a fraction of the cost.
    # End-of-epoch evaluations score the whole split, and only they measure the model. The
    # training subset (EpochRecord.train_subset_loss) is scored alike: the first N, or all of it.
    interim_validation_size: int | None = None
    precision: str | None = None  # one of PRECISIONS; None: the device's default

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "evaluations_per_epoch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.interim_validation_size is not None and self.interim_validation_size < 1:
            raise ValueError("interim_validation_size must be at least 1, got "
                             f"{self.interim_validation_size}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")


@dataclass(frozen=True)
class EpochRecord:
    """One point of the learning curve; `epoch` is fractional when evaluated within epochs."""

    epoch: float
    # Mean minibatch loss since the previous record, each taken before its own step: a running
    # signal of training, not a measure of fitting (every batch of a first epoch is unseen).
    train_loss: float
    validation_loss: float
    validation_accuracy: float
    seconds: float
    images_per_second: float
    interim: bool = False  # scored on the interim subset: a signal for pruning, not a measurement
    # The model (eval mode) on a fixed subset of the training split as large as validation, scored
    # like validation (the interim count when `interim`): the generalization gap is
    # validation_loss - train_subset_loss. None in curves recorded before it was measured.
    train_subset_loss: float | None = None
    train_subset_accuracy: float | None = None


def best_validation_accuracy(curve: Iterable[EpochRecord]) -> float:
    """The best accuracy on the whole validation split; interim scores do not count."""
    return max((r.validation_accuracy for r in curve if not r.interim), default=0.0)


@dataclass
class TrainResult:
    model: nn.Module
    history: list[EpochRecord] = field(default_factory=list)
    stopped_early: bool = False

    @property
    def best_validation_accuracy(self) -> float:
        return best_validation_accuracy(self.history)

    @property
    def training_seconds(self) -> float:
        return sum(r.seconds for r in self.history)

    def history_dicts(self) -> list[dict]:
        return [asdict(r) for r in self.history]


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    predictions: torch.Tensor


class StopTraining(Exception):
    """Raised by an `on_evaluation` callback to end training early, keeping the result."""


EvaluationCallback = Callable[[EpochRecord, nn.Module], None]


class DeviceError(ValueError):
    """A device this machine does not have: bad input, found before any work starts."""


def pick_device(name: str | None = None) -> torch.device:
    """CUDA when there is one, else the CPU; `name` overrides, checked to exist here."""
    if not name:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}: use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceError(f"device {name!r}: torch finds no CUDA GPU on this machine; "
                              "use --device cpu")
        if device.index is not None and device.index >= count:
            raise DeviceError(f"device {name!r}: this machine has {count} CUDA GPU"
                              f"{'s' if count != 1 else ''} (cuda:0..cuda:{count - 1})")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {name!r}: MPS is not available here; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"device {name!r}: mnist-bench runs on cpu, cuda or mps only")
    return device


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def use_available_cores() -> int:
    """Set torch's thread count to the cores this process may run on."""
    torch.set_num_threads(available_cores())
    return torch.get_num_threads()


def prepare_model(model: nn.Module, device: torch.device) -> nn.Module:
    """Move to the device; channels_last on the CPU, where oneDNN convolutions run faster."""
    model = model.to(device)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    return model


def to_input(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 batch on `device` -> the normalized float input the model takes."""
    batch = normalize(images)
    if device.type == "cpu":
        batch = batch.contiguous(memory_format=torch.channels_last)
    return batch


def resolve_precision(device: torch.device, precision: str | None = None) -> str:
    """`precision`, or the device's default: bf16 on CUDA, fp32 on the CPU.

    On CPUs with native bf16 (AVX512-BF16, AMX) oneDNN's bf16 convolutions are much faster than
    float32 ones; elsewhere they are emulated and slower, so the CPU's default stays float32.
    """
    return precision or ("bf16" if device.type == "cuda" else "fp32")


def autocast(device: torch.device, precision: str | None = None) -> torch.autocast:
    """bf16 autocast where the resolved precision is bf16; a no-op otherwise."""
    enabled = resolve_precision(device, precision) == "bf16"
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Small random shifts (up to 2 px) and rotations (up to 10 degrees), on the device."""
    n = batch.shape[0]
    rand = torch.rand(n, 3, generator=generator, device=generator.device).to(batch.device)
    angle = (rand[:, 0] * 2 - 1) * math.radians(10)
    shift = (rand[:, 1:] * 2 - 1) * (2 / 14)  # 2 px in [-1, 1] grid units of a 28 px image
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    background = batch.amin()
    return F.grid_sample(batch - background, grid, align_corners=False) + background


# Validation batches: 250 images keep a batch's feature maps in this CPU's caches, where 1,000 did
# not; evaluation took 0.6x (fp32) to 0.8x the time, with bitwise the same logits (measured).
EVALUATION_BATCH_SIZE = 250


@torch.no_grad()
def evaluate(
    model: nn.Module, data: ImageSet, device: torch.device,
    batch_size: int = EVALUATION_BATCH_SIZE,
    precision: str | None = None,
) -> Evaluation:
    """Loss, accuracy and predicted labels of `model` on `data` (at `precision`, see `autocast`)."""
    model.eval()
    images, labels = data.images.to(device), data.labels.to(device)
    total_loss = torch.zeros((), device=device)
    predictions = []
    for start in range(0, len(data), batch_size):
        with autocast(device, precision):
            logits = model(to_input(images[start : start + batch_size], device))
        target = labels[start : start + batch_size]
        total_loss += F.cross_entropy(logits.float(), target, reduction="sum")
        predictions.append(logits.argmax(1))
    predicted = torch.cat(predictions) if predictions else labels.new_empty(0)
    accuracy = (predicted == labels).float().mean().item() if len(data) else 0.0
    return Evaluation(total_loss.item() / max(1, len(data)), accuracy, predicted.cpu())


def _first(images: ImageSet, size: int | None) -> ImageSet:
    """The set's first `size` images (all where `size` is None): what interim evaluations score."""
    return ImageSet(images.images[:size], images.labels[:size])


def training_subset(train: ImageSet, size: int) -> ImageSet:
    """The training images scored at each evaluation: the first `size`. The split is a seeded
    permutation (load_train_validation, take_subset), so they are a fixed random subset, taken
    without drawing from any generator that training uses."""
    return _first(train, size)


def _make_scheduler(
    optimizer: torch.optim.Optimizer, settings: TrainSettings, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    total_steps = settings.epochs * steps_per_epoch
    if settings.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if settings.lr_schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=settings.learning_rate, total_steps=total_steps
        )
    return None


def train(
    config: CNNConfig,
    settings: TrainSettings,
    data: TrainValidationSplit,
    device: torch.device | None = None,
    on_evaluation: EvaluationCallback | None = None,
    initial_weights: dict[str, torch.Tensor] | None = None,
    checkpoint_path: Path | None = None,
    on_step: Callable[[], None] | None = None,
) -> TrainResult:
    """Train with Adam and cross-entropy; evaluate on validation `evaluations_per_epoch` times.

    `on_evaluation(record, model)` runs after each evaluation: it may raise to prune, or
    `StopTraining` to end early. With `checkpoint_path`, state is saved after every epoch and
    a run that finds a checkpoint there continues from it. `on_step()` runs after each batch's
    step (progress within an epoch).
    """
    device = device or pick_device()
    torch.manual_seed(settings.seed)
    model = build_model(config)
    if initial_weights is not None:
        model.load_state_dict(initial_weights)
    model = prepare_model(model, device)
    # foreach: one vectorized update for all parameters, bitwise equal to the per-parameter
    # loop on the CPU and a few percent faster; `fused` would be faster still but rounds
    # differently, which would make every stored curve another fidelity.
    optimizer = torch.optim.Adam(
        model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay,
        foreach=True,
    )
    train_images = data.train.images.to(device)
    train_labels = data.train.labels.to(device)
    n = len(data.train)
    steps_per_epoch = math.ceil(n / settings.batch_size)
    scheduler = _make_scheduler(optimizer, settings, steps_per_epoch)
    order_generator = torch.Generator().manual_seed(settings.seed)
    augment_generator = torch.Generator(device=device).manual_seed(settings.seed)
    result = TrainResult(model)
    start_epoch = 0
    if checkpoint_path is not None and Path(checkpoint_path).exists():
        start_epoch = _load_checkpoint(
            checkpoint_path, model, optimizer, scheduler, result, order_generator, augment_generator
        )
    bounds = [round(steps_per_epoch * (j + 1) / settings.evaluations_per_epoch)
              for j in range(settings.evaluations_per_epoch)]
    interim_size = settings.interim_validation_size
    has_interim = interim_size is not None and interim_size < len(data.validation)
    train_subset = training_subset(ImageSet(train_images, train_labels),
                                   min(len(data.validation), n))
    # (validation, training subset) as scored at the end of an epoch and within one
    scored = {False: (data.validation, train_subset),
              True: (_first(data.validation, interim_size), _first(train_subset, interim_size))}
    try:
        for epoch in range(start_epoch, settings.epochs):
            order = torch.randperm(n, generator=order_generator).to(device)
            step = 0
            for part, bound in enumerate(bounds):
                model.train()
                started = time.perf_counter()
                loss_sum = torch.zeros((), device=device)
                seen = 0
                for step in range(step, bound):
                    index = order[step * settings.batch_size : (step + 1) * settings.batch_size]
                    batch = to_input(train_images[index], device)
                    if settings.augment:
                        batch = augment(batch, augment_generator)
                    with autocast(device, settings.precision):
                        logits = model(batch)
                    loss = F.cross_entropy(logits.float(), train_labels[index])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    if scheduler is not None:
                        scheduler.step()
                    loss_sum += loss.detach() * len(index)
                    seen += len(index)
                    if on_step is not None:
                        on_step()
                step = bound
                train_loss = loss_sum.item() / max(1, seen)  # syncs the device before timing
                seconds = time.perf_counter() - started
                interim = has_interim and part < len(bounds) - 1
                validation_set, fitting_set = scored[interim]
                evaluation = evaluate(model, validation_set, device, precision=settings.precision)
                fitting = evaluate(model, fitting_set, device, precision=settings.precision)
                record = EpochRecord(
                    epoch=epoch + (part + 1) / settings.evaluations_per_epoch,
                    train_loss=train_loss,
                    validation_loss=evaluation.loss,
                    validation_accuracy=evaluation.accuracy,
                    seconds=seconds,
                    images_per_second=seen / seconds if seconds > 0 else 0.0,
                    interim=interim,
                    train_subset_loss=fitting.loss,
                    train_subset_accuracy=fitting.accuracy,
                )
                result.history.append(record)
                if on_evaluation is not None:
                    on_evaluation(record, model)
            if checkpoint_path is not None:
                _save_checkpoint(
                    checkpoint_path, epoch + 1, model, optimizer, scheduler, result,
                    order_generator, augment_generator,
                )
    except StopTraining:
        result.stopped_early = True
    model.eval()
    return result


def _save_checkpoint(path, epochs_done, model, optimizer, scheduler, result, *generators) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "epochs_done": epochs_done,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "history": result.history_dicts(),
        "generators": [g.get_state() for g in generators],
        "torch_rng": torch.get_rng_state(),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


class CheckpointError(ValueError):
    """A checkpoint that cannot be read (cut short or overwritten on disk): bad input naming it."""


def read_checkpoint(path: Path, weights_only: bool = True) -> Any:
    """What `torch.save` wrote at `path`; a damaged file is one line saying which and what to do."""
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as error:
        reason = str(error).strip().split(". ")[0] or type(error).__name__
        raise CheckpointError(f"checkpoint {path} is damaged ({reason}): delete it and rerun "
                              "to train again what it held") from None


def _load_checkpoint(path, model, optimizer, scheduler, result, *generators) -> int:
    state = read_checkpoint(path, weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    result.history.extend(EpochRecord(**r) for r in state["history"])
    for generator, generator_state in zip(generators, state["generators"]):
        generator.set_state(generator_state)
    torch.set_rng_state(state["torch_rng"])
    return int(state["epochs_done"])


def checkpoint_history(path: Path) -> list[EpochRecord]:
    """The learning curve saved in a checkpoint: what a resumed run has already done."""
    if not Path(path).exists():
        return []
    state = read_checkpoint(path, weights_only=False)
    return [EpochRecord(**r) for r in state["history"]]
