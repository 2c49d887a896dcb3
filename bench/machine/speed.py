"""Side-by-side speed benchmark: the tutorial's DataLoader loop against our on-device loop.

Both train the tutorial network on the same number of images in one process, alternating, so
that a noisy shared machine slows both alike; the ratio is the result, absolute rates are context.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mnist_cnn.cpu import bf16_is_emulated, cpu_bf16_support
from mnist_cnn.data import (MEAN, STD, TrainValidationSplit, load_train_validation, take_subset,
                            tutorial_dataset)
from mnist_cnn.metrics import flops_per_image, matmul_flops_per_second
from mnist_cnn.model import CNNConfig, build_model
from mnist_cnn.train import (TrainSettings, autocast, pick_device, prepare_model,
                             resolve_precision, train, use_available_cores)


ROUND_SECONDS = 5.0  # the most one loop of a round trains for, judged from its warm-up


@dataclass(frozen=True)
class SpeedResult:
    images: int
    batch_size: int
    threads: int
    device: str
    precision: str  # ours: "fp32" or "bf16" (see mnist_cnn.train.autocast); the tutorial's is fp32
    tutorial_images_per_second: list[float]
    ours_images_per_second: list[float]
    training_flops_per_image: int
    matmul_flops_per_second: float  # float32: the yardstick, whatever precision ours ran at
    bf16_matmul_flops_per_second: float | None = None  # measured where ours ran in bf16
    ours_images: int | None = None  # images ours trained on per round, when fewer than `images`
    tutorial_images: int | None = None  # the same for the tutorial's loop
    emulated_bf16: str | None = None  # why bf16 is emulated here (mnist_cnn.cpu), when it is

    @property
    def tutorial_median(self) -> float:
        return statistics.median(self.tutorial_images_per_second)

    @property
    def ours_median(self) -> float:
        return statistics.median(self.ours_images_per_second)

    @property
    def ratio(self) -> float:
        return self.ours_median / self.tutorial_median

    @property
    def training_flops_per_second(self) -> float:
        return self.ours_median * self.training_flops_per_image

    @property
    def fraction_of_matmul(self) -> float:
        """Of float32 matmul's FLOP/s."""
        return self.training_flops_per_second / self.matmul_flops_per_second

    @property
    def fraction_of_bf16_matmul(self) -> float | None:
        """Of bf16 matmul's FLOP/s: the ceiling a bf16 run could reach."""
        if self.bf16_matmul_flops_per_second is None:
            return None
        return self.training_flops_per_second / self.bf16_matmul_flops_per_second

    def render(self) -> str:
        def spread(values: list[float]) -> str:
            return f"median {statistics.median(values):,.0f} img/s (min {min(values):,.0f}, max {max(values):,.0f})"

        bf16_ceiling = ""
        if self.bf16_matmul_flops_per_second is not None and not self.emulated_bf16:
            bf16_ceiling = (f", {self.fraction_of_bf16_matmul:.0%} of its bf16 matmul "
                            f"({self.bf16_matmul_flops_per_second / 1e9:.3g} GFLOP/s)")
        def bounded(count: int | None) -> str:
            return "" if count is None else f" on {count:,} images a round (time-bounded)"

        lines = [
            f"tutorial network on {self.device}, {self.images:,} images per loop, batch "
            f"{self.batch_size}, {self.threads} threads, {len(self.ours_images_per_second)} "
            "alternating rounds",
            f"tutorial loop (DataLoader + ToTensor){bounded(self.tutorial_images)}: "
            f"{spread(self.tutorial_images_per_second)}",
            f"ours (on-device tensors, index slices, {self.precision}){bounded(self.ours_images)}: "
            f"{spread(self.ours_images_per_second)}",
            f"speed-up: {self.ratio:.2f}x",
            f"training: {self.training_flops_per_second / 1e9:.3g} GFLOP/s = "
            f"{self.fraction_of_matmul:.1%} of this machine's float32 matmul "
            f"({self.matmul_flops_per_second / 1e9:.3g} GFLOP/s){bf16_ceiling}",
        ]
        if self.emulated_bf16:
            matmul_ratio = self.matmul_flops_per_second / self.bf16_matmul_flops_per_second
            lines.append(f"bf16 is emulated here ({self.emulated_bf16}): its matmul measured "
                         f"{self.bf16_matmul_flops_per_second / 1e9:.3g} GFLOP/s, "
                         f"{matmul_ratio:.0f}x under float32's; train in fp32 on this CPU")
        return "\n".join(lines)


def bf16_slowdown(device: torch.device, batch_size: int = 16, steps: int = 2) -> float:
    """How many times longer a training step (forward and backward) of the tutorial network
    takes under bf16 autocast than in float32 here: small, for a refusal's message."""
    model = prepare_model(build_model(CNNConfig()), device)
    batch = torch.randn(batch_size, 1, 28, 28, device=device)
    labels = torch.randint(0, 10, (batch_size,), device=device)
    seconds = {}
    for precision in ("fp32", "bf16", "fp32", "bf16"):  # the first pair warms up
        started = time.perf_counter()
        for _ in range(steps):
            with autocast(device, precision):
                loss = nn.functional.cross_entropy(model(batch), labels)
            loss.backward()
        seconds[precision] = time.perf_counter() - started
    return seconds["bf16"] / seconds["fp32"]


def tutorial_loop(images: int, batch_size: int, data_dir: Path | None,
                  device: torch.device = torch.device("cpu")) -> float:
    """The tutorial's loop: torchvision MNIST, ToTensor + Normalize per sample, a DataLoader,
    each batch moved to the device as the tutorial does on a GPU."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    dataset = Subset(tutorial_dataset(data_dir, transform), range(images))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
    torch.manual_seed(0)
    model = build_model(CNNConfig()).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss()
    model.train()
    started = time.perf_counter()
    for batch, labels in loader:
        batch, labels = batch.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = criterion(model(batch), labels)
        loss.backward()
        optimizer.step()
    loss.item()  # waits for the device
    return images / (time.perf_counter() - started)


def our_loop(split: TrainValidationSplit, batch_size: int,
             device: torch.device = torch.device("cpu"), precision: str | None = None) -> float:
    """`mnist_cnn.train.train` on the same images; its own timing excludes validation."""
    settings = TrainSettings(epochs=1, batch_size=batch_size, precision=precision)
    result = train(CNNConfig(), settings, split, device)
    return result.history[0].images_per_second


def run_speed_benchmark(images: int = 6400, batch_size: int = 64, repeats: int = 3,
                        data_dir: Path | None = None, device: str | None = "cpu",
                        precision: str | None = None) -> SpeedResult:
    """Alternate both loops `repeats` times on the device and compare their medians; ours runs
    at `precision` (None: the device's default), and a bf16 run is compared to bf16 matmul too."""
    threads = use_available_cores()
    chosen = pick_device(device)
    resolved = resolve_precision(chosen, precision)
    full = load_train_validation(data_dir, validation_size=100)
    if images > len(full.train):
        raise ValueError(f"--images {images} is more than the {len(full.train)} training images")
    warmup = TrainValidationSplit(take_subset(full.train, 4 * batch_size, 0), full.validation)
    # Each loop trains on at most what its warm-up says fits in ROUND_SECONDS (emulated bf16 is
    # 12-22x slower, a busy CPU 2x): a rate is a rate, and the command stays under a minute.
    def bounded(rate: float) -> int:
        return min(images, max(4 * batch_size, int(rate * ROUND_SECONDS)))

    ours_images = bounded(our_loop(warmup, batch_size, chosen, precision))
    tutorial_images = bounded(tutorial_loop(4 * batch_size, batch_size, data_dir, chosen))
    split = TrainValidationSplit(take_subset(full.train, ours_images, seed=0), full.validation)
    tutorial, ours = [], []
    for _ in range(repeats):
        tutorial.append(tutorial_loop(tutorial_images, batch_size, data_dir, chosen))
        ours.append(our_loop(split, batch_size, chosen, precision))
    model = prepare_model(build_model(CNNConfig()), chosen)
    return SpeedResult(
        images=images, batch_size=batch_size, threads=threads, device=str(chosen),
        precision=resolved,
        tutorial_images_per_second=tutorial, ours_images_per_second=ours,
        training_flops_per_image=flops_per_image(model, training=True),
        matmul_flops_per_second=matmul_flops_per_second(device=chosen),
        bf16_matmul_flops_per_second=(matmul_flops_per_second(device=chosen, dtype=torch.bfloat16)
                                      if resolved == "bf16" else None),
        ours_images=ours_images if ours_images < images else None,
        tutorial_images=tutorial_images if tutorial_images < images else None,
        emulated_bf16=(cpu_bf16_support().reason
                       if resolved == "bf16" and bf16_is_emulated(chosen) else None),
    )
