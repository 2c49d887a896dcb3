"""MNIST on the device: the real files, read by torchvision, held as uint8 tensors.

The training files give a seeded train/validation split; the test files are read only by
`load_test_set`, which nothing that selects models calls.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from torchvision import datasets
from torchvision.datasets.mnist import read_image_file, read_label_file

DATA_DIR_ENV = "MNIST_BENCH_DATA_DIR"
CACHE_DIR_ENV = "MNIST_BENCH_CACHE"
TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
MEAN, STD = 0.1307, 0.3081


class DataError(Exception):
    """MNIST files are missing or unreadable; the message names the file."""


@dataclass(frozen=True)
class ImageSet:
    """Images as uint8 [N, 28, 28] and labels as int64 [N], on one device."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device | str) -> "ImageSet":
        return ImageSet(self.images.to(device), self.labels.to(device))

    def subset(self, indices: torch.Tensor) -> "ImageSet":
        return ImageSet(self.images[indices], self.labels[indices])


@dataclass(frozen=True)
class TrainValidationSplit:
    """The training images split in two; the search selects on `validation`."""

    train: ImageSet
    validation: ImageSet
    seed: int = 0  # the seed of the permutation that made it (and of a train subset taken from it)


def shipped_data_dir() -> Path:
    """The gzipped MNIST files that ship inside the package."""
    return Path(str(resources.files("mnist_cnn") / "mnist_data"))


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """`data_dir`, else $MNIST_BENCH_DATA_DIR, else the shipped copy."""
    chosen = data_dir or os.environ.get(DATA_DIR_ENV)
    if not chosen:
        return shipped_data_dir()
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise DataError(f"data dir {path} is not a folder")
    return path


def _cache_root() -> Path:
    root = os.environ.get(CACHE_DIR_ENV)
    if root:
        return Path(root).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mnist-bench"


def _source_file(source: Path, name: str) -> Path | None:
    for candidate in (source / name, source / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _cache_folder_for(source: Path, names: tuple[str, ...]) -> Path:
    """One cache folder per source folder and file version, so changed files are re-read."""
    digest = hashlib.sha256(str(source.resolve()).encode())
    for name in names:
        found = _source_file(source, name)
        if found is not None:
            stat = found.stat()
            digest.update(f"{found.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return _cache_root() / digest.hexdigest()[:16]


def _unpack(source_file: Path, target: Path) -> None:
    """Copy or gunzip one file into the cache, atomically, once."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        try:
            opener = gzip.open if source_file.suffix == ".gz" else open
            with opener(source_file, "rb") as src:
                shutil.copyfileobj(src, tmp)
        except (OSError, EOFError, gzip.BadGzipFile) as error:
            os.unlink(tmp.name)
            raise DataError(f"cannot read {source_file}: {error}") from None
    os.replace(tmp.name, target)


def _prepare_root(source: Path, names: tuple[str, ...]) -> tuple[Path, bool]:
    """Unpack `names` from `source` into a torchvision-style root; say if any were missing."""
    root = _cache_folder_for(source, names)
    raw = root / "MNIST" / "raw"
    missing = False
    for name in names:
        found = _source_file(source, name)
        if found is None:
            missing = True
            continue
        _unpack(found, raw / name)
    return root, missing


class _SplitMNIST(datasets.MNIST):
    """torchvision's MNIST reader, asking only for the two files of the split it reads."""

    @property
    def raw_folder(self) -> str:
        return os.path.join(self.root, "MNIST", "raw")

    def _check_exists(self) -> bool:
        names = TRAIN_FILES if self.train else TEST_FILES
        return all(os.path.isfile(os.path.join(self.raw_folder, name)) for name in names)


def _read_mnist(data_dir: str | Path | None, train: bool) -> ImageSet:
    source = resolve_data_dir(data_dir)
    names = TRAIN_FILES if train else TEST_FILES
    root, missing = _prepare_root(source, names)
    if missing:
        absent = next(n for n in names if _source_file(source, n) is None)
        if source != shipped_data_dir():
            raise DataError(f"{absent} (or {absent}.gz) not found in {source}")
        try:  # the package was installed without its copy of MNIST: fetch it once
            dataset = _SplitMNIST(root, train=train, download=True)
        except Exception as error:
            raise DataError(f"{absent} is not shipped and downloading it failed: {error}") from None
        return ImageSet(dataset.data.contiguous(), dataset.targets.long())
    try:
        dataset = _SplitMNIST(root, train=train, download=False)
    except Exception as error:
        raise DataError(_name_corrupt_file(root, names, error)) from None
    if dataset.data.ndim != 3 or len(dataset.data) != len(dataset.targets):
        raise DataError(
            f"{names[0]} and {names[1]} in {source} disagree: "
            f"{len(dataset.data)} images, {len(dataset.targets)} labels"
        )
    return ImageSet(dataset.data.contiguous(), dataset.targets.long())


def tutorial_dataset(data_dir: str | Path | None, transform) -> datasets.MNIST:
    """torchvision's per-sample training Dataset with `transform`: the tutorial's data path."""
    root, missing = _prepare_root(resolve_data_dir(data_dir), TRAIN_FILES)
    if missing:
        raise DataError(f"training files not found in {resolve_data_dir(data_dir)}")
    return _SplitMNIST(root, train=True, transform=transform)


def _name_corrupt_file(root: Path, names: tuple[str, ...], error: Exception) -> str:
    """Read each file on its own to name the one torchvision rejects."""
    images, labels = (root / "MNIST" / "raw" / name for name in names)
    for reader, path in ((read_image_file, images), (read_label_file, labels)):
        try:
            reader(str(path))
        except Exception as file_error:
            return f"{path.name} is not a valid MNIST IDX file: {_idx_problem(path, file_error)}"
    return f"cannot read MNIST from {root}: {error}"


def _idx_problem(path: Path, error: Exception) -> str:
    """The reader's reason, or (torchvision often gives none) what its header holds instead."""
    reason = str(error).strip()
    if reason:
        return reason
    header = path.read_bytes()[:4]
    return (f"its header is {header.hex(' ') or 'empty'}, where an IDX file of MNIST images or "
            "labels starts with 00 00 08 03 or 00 00 08 01")


def require_test_files(data_dir: str | Path | None) -> None:
    """Missing test files fail now, in one line, without reading them: a command that scores
    on the test set only after training learns of them before it trains."""
    source = resolve_data_dir(data_dir)
    if source == shipped_data_dir():
        return  # fetched when first read, if the package was installed without them
    for name in TEST_FILES:
        if _source_file(source, name) is None:
            raise DataError(f"{name} (or {name}.gz) not found in {source}")


def describe_data(data_dir: str | Path | None) -> str:
    """Which MNIST files `data_dir` means, for a sentence: the shipped copy, or the folder."""
    source = resolve_data_dir(data_dir)
    if source.resolve() == shipped_data_dir().resolve():
        return "the shipped MNIST"
    return str(source)


def data_fingerprint(data_dir: str | Path | None) -> str:
    """What the training files hold: "shipped" for the packaged copy, else "sha256:" and the
    digest of their unpacked bytes, so that a curve measured on one machine is only ever matched
    with the same data elsewhere, whatever folder it sits in."""
    source = resolve_data_dir(data_dir)
    if source.resolve() == shipped_data_dir().resolve():
        return "shipped"
    root, missing = _prepare_root(source, TRAIN_FILES)
    if missing:
        absent = next(n for n in TRAIN_FILES if _source_file(source, n) is None)
        raise DataError(f"{absent} (or {absent}.gz) not found in {source}")
    return _digest(root)


@functools.lru_cache(maxsize=8)
def _digest(root: Path) -> str:
    """Digest of the unpacked training files; `root` names one version of them (see
    _cache_folder_for), so the digest is computed once per process."""
    digest = hashlib.sha256()
    for name in TRAIN_FILES:
        with open(root / "MNIST" / "raw" / name, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()[:32]


def load_train_validation(
    data_dir: str | Path | None = None, validation_size: int = 5000, seed: int = 0
) -> TrainValidationSplit:
    """The training files, split by a seeded permutation into train and validation."""
    full = _read_mnist(data_dir, train=True)
    if not 0 < validation_size < len(full):
        raise DataError(
            f"validation size {validation_size} must be between 1 and {len(full) - 1}"
        )
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(full), generator=generator)
    return TrainValidationSplit(
        train=full.subset(order[validation_size:]),
        validation=full.subset(order[:validation_size]),
        seed=seed,
    )


def load_test_set(data_dir: str | Path | None = None) -> ImageSet:
    """The held-out test files: for final evaluation only."""
    return _read_mnist(data_dir, train=False)


def take_subset(images: ImageSet, size: int | None, seed: int) -> ImageSet:
    """A seeded random subset of `size` images (all when size is None or too large)."""
    if size is None or size >= len(images):
        return images
    generator = torch.Generator().manual_seed(seed)
    return images.subset(torch.randperm(len(images), generator=generator)[:size])


def with_train_size(split: TrainValidationSplit, size: int | None) -> TrainValidationSplit:
    """`split` training on a seeded subset (`split.seed`) of `size` images; all when None. The
    validation split is the same, so evaluations cost what they did."""
    if size is not None and size > len(split.train):
        # a larger size would train on all of them while the record said the size asked
        raise DataError(f"--train-size {size} is more than the {len(split.train):,} training "
                        "images left after the validation split")
    return TrainValidationSplit(take_subset(split.train, size, split.seed), split.validation,
                                split.seed)


def load_split(data_dir: str | Path | None, validation_size: int, seed: int,
               train_size: int | None = None) -> TrainValidationSplit:
    """The split every trainer (search, race, train, finetune) loads: the seeded train/validation
    split, training on a seeded subset of `train_size` images (all when None)."""
    return with_train_size(load_train_validation(data_dir, validation_size, seed), train_size)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 28, 28] -> float [N, 1, 28, 28], normalized on the tensor's device."""
    return images.unsqueeze(1).float().div_(255.0).sub_(MEAN).div_(STD)
