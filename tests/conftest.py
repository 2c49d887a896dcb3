"""Shared fixtures: tiny, learnable MNIST-format data written as real IDX files."""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

FOREIGN_CPU = "MNIST_BENCH_TEST_CPU"  # =foreign: tests take the branch of a CPU unlike the reference's


def make_images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is a bright 8x8 square at one of ten places, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=count).astype(np.uint8)
    images = rng.integers(0, 60, size=(count, 28, 28)).astype(np.uint8)
    for i, label in enumerate(labels):
        row, col = 2 + (label // 5) * 14, 1 + (label % 5) * 5
        images[i, row : row + 8, col : col + 5] = 255
    return images, labels


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool) -> None:
    """Write images and labels as the two standard IDX files, gzipped or not."""
    opener = gzip.open if gz else open
    suffix = ".gz" if gz else ""
    with opener(folder / f"{prefix}-images-idx3-ubyte{suffix}", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(images), 28, 28))
        f.write(images.tobytes())
    with opener(folder / f"{prefix}-labels-idx1-ubyte{suffix}", "wb") as f:
        f.write(struct.pack(">II", 0x801, len(labels)))
        f.write(labels.tobytes())


def write_tiny_mnist(folder: Path, train: int = 1200, test: int = 200, gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder, "train", *make_images(train, seed=1), gz=gz)
    write_idx(folder, "t10k", *make_images(test, seed=2), gz=gz)
    return folder


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test unpacks into its own cache and ignores the user's MNIST_BENCH_DATA_DIR."""
    monkeypatch.setenv("MNIST_BENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("MNIST_BENCH_DATA_DIR", raising=False)


@pytest.fixture(scope="session")
def tiny_mnist(tmp_path_factory) -> Path:
    """A folder of tiny gzipped MNIST files: 1,200 training and 200 test images."""
    return write_tiny_mnist(tmp_path_factory.mktemp("tiny_mnist"))


@dataclass(frozen=True)
class ReferenceCPU:
    """Whether this machine is to be treated as the one the shipped faq table was measured on."""

    same: bool
    why: str


@pytest.fixture(scope="session")
def reference_cpu() -> ReferenceCPU:
    """The CPU fingerprint of this machine against the shipped table's manifest; with
    MNIST_BENCH_TEST_CPU=foreign, another CPU whatever the fingerprint, so the branches a user's
    machine takes (within noise, not bitwise) run on the reference's machine too."""
    import json

    from bench.store.reference import cpu_fingerprint, manifest_path

    table = Path(__file__).resolve().parents[1] / "results" / "reference" / "faq-cpu.jsonl"
    theirs = json.loads(manifest_path(table).read_text())["cpu"]
    if os.environ.get(FOREIGN_CPU, "").strip().lower() == "foreign":
        return ReferenceCPU(False, f"{FOREIGN_CPU}=foreign: treated as a CPU unlike the reference's")
    mine = cpu_fingerprint()
    if mine == theirs:
        return ReferenceCPU(True, "this CPU's fingerprint is the reference's")
    return ReferenceCPU(False, f"this CPU ({mine['model']}, {mine['torch_capability']}) is not the "
                               f"reference's ({theirs['model']}, {theirs['torch_capability']})")
