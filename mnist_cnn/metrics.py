"""Measurements of a model: size, FLOPs and speed. The one place speed is measured."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mnist_cnn.model import IMAGE_SIZE
from mnist_cnn.train import autocast, to_input


# Timed calls per trained trial (search and race): enough for a stable median, few enough to be
# cheap; `train` and `finetune`, which measure one final model, take measure_model's default.
TRIAL_MEASURE_REPEATS = 20


@dataclass(frozen=True)
class ModelMetrics:
    parameters: int
    flops_per_image: int
    latency_ms_batch1: float  # the median of `latency_calls` timed calls
    inference_images_per_second: float
    # The spread of those calls: their first and third quartiles (one timing is no measurement;
    # a busy machine shows here as a wide spread, not as a different median alone).
    latency_ms_batch1_q1: float = 0.0
    latency_ms_batch1_q3: float = 0.0
    latency_calls: int = 0

    def latency_text(self) -> str:
        return describe_latency(self.latency_ms_batch1, self.latency_ms_batch1_q1,
                                self.latency_ms_batch1_q3, self.latency_calls)


def describe_latency(median: float, q1: float, q3: float, calls: int) -> str:
    """A batch-1 latency as a sentence part: median, quartiles and how many calls."""
    return f"latency {median:.2f} ms (median of {calls} calls, quartiles {q1:.2f}-{q3:.2f} ms)"


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def model_size(model: nn.Module) -> dict[str, int]:
    """Parameters and FLOPs per image: what a model that is not timed (a pruned trial's) records."""
    return {"parameters": count_parameters(model), "flops_per_image": flops_per_image(model)}


def _example(batch: int, device: torch.device) -> torch.Tensor:
    images = torch.randint(0, 256, (batch, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.uint8, device=device)
    return to_input(images, device)


def flops_per_image(model: nn.Module, training: bool = False) -> int:
    """FLOPs of one image's forward pass (forward and backward when `training`), by torch's counter."""
    device = next(model.parameters()).device
    was_training = model.training
    model.train(training)
    counter = FlopCounterMode(display=False)
    with counter:
        output = model(_example(1, device))
        if training:
            output.sum().backward()
    if training:
        model.zero_grad(set_to_none=True)
    model.train(was_training)
    return int(counter.get_total_flops())


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def _timed_runs(model: nn.Module, batch: int, repeats: int, warmup: int,
                precision: str | None) -> list[float]:
    device = next(model.parameters()).device
    example = _example(batch, device)
    model.eval()
    times = []
    for i in range(warmup + repeats):
        _synchronize(device)
        started = time.perf_counter()
        with autocast(device, precision):
            model(example)
        _synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - started)
    return times


def inference_latency_ms(model: nn.Module, repeats: int = 50, warmup: int = 5,
                         precision: str | None = None) -> tuple[float, float, float]:
    """Milliseconds for one image: the first quartile, median and third quartile of `repeats`
    calls."""
    times = [seconds * 1000 for seconds in _timed_runs(model, 1, repeats, warmup, precision)]
    if len(times) < 2:
        return times[0], times[0], times[0]
    q1, median, q3 = statistics.quantiles(times, n=4)
    return q1, median, q3


def inference_throughput(model: nn.Module, batch: int = 256, repeats: int = 10, warmup: int = 2,
                         precision: str | None = None) -> float:
    """Images per second at `batch` images a call (median call time)."""
    return batch / statistics.median(_timed_runs(model, batch, repeats, warmup, precision))


def measure_model(model: nn.Module, repeats: int = 50, precision: str | None = None) -> ModelMetrics:
    """Parameters, FLOPs per image, latency at batch 1 and throughput at batch 256, timed at the
    `precision` the model was trained at (see mnist_cnn.train.autocast)."""
    q1, median, q3 = inference_latency_ms(model, repeats=repeats, precision=precision)
    return ModelMetrics(
        **model_size(model),
        latency_ms_batch1=median,
        inference_images_per_second=inference_throughput(model, repeats=max(3, repeats // 5),
                                                         precision=precision),
        latency_ms_batch1_q1=q1,
        latency_ms_batch1_q3=q3,
        latency_calls=repeats,
    )


def matmul_flops_per_second(seconds: float = 1.0, device: torch.device | None = None,
                            dtype: torch.dtype = torch.float32, max_size: int = 2048) -> float:
    """This machine's matrix-multiply FLOP/s in `dtype`: the ceiling training speed is compared to.

    Measured for about `seconds`, not at a fixed size, so that an emulated dtype (bf16 on a CPU
    without it runs some 100x slower) cannot hold it up: square matrices grow from 128 until one
    product takes a tenth of the time (or reaches `max_size`), then the fastest of up to five
    products within the time is taken.
    """
    device = device or torch.device("cpu")
    size = 64
    while True:
        size *= 2
        a = torch.randn(size, size, device=device, dtype=dtype)
        b = torch.randn(size, size, device=device, dtype=dtype)
        times = [_time_product(a, b, device)]
        if times[0] * 10 >= seconds or size >= max_size:
            break
    while len(times) < 5 and sum(times) < seconds:
        times.append(_time_product(a, b, device))
    return 2 * size**3 / min(times)


def _time_product(a: torch.Tensor, b: torch.Tensor, device: torch.device) -> float:
    _synchronize(device)
    started = time.perf_counter()
    a @ b
    _synchronize(device)
    return time.perf_counter() - started
