"""The loader reads real IDX files through torchvision; the split is seeded and keeps test apart."""

import os

import pytest
import torch

from conftest import make_images, write_idx, write_tiny_mnist
from mnist_cnn import data
from mnist_cnn.data import DataError, load_test_set, load_train_validation


@pytest.mark.parametrize("gz", [True, False])
def test_reads_gzipped_and_raw_files(tmp_path, gz):
    folder = write_tiny_mnist(tmp_path / "mnist", train=300, test=50, gz=gz)
    images, labels = make_images(300, seed=1)
    split = load_train_validation(folder, validation_size=100, seed=0)
    assert len(split.train) == 200 and len(split.validation) == 100
    assert split.train.images.dtype == torch.uint8
    assert split.train.images.shape[1:] == (28, 28)
    # every image read back equals one written, with its label
    written = {bytes(img.tobytes()): int(lab) for img, lab in zip(images, labels)}
    for img, lab in zip(split.validation.images, split.validation.labels):
        assert written[bytes(img.numpy().tobytes())] == int(lab)
    assert len(load_test_set(folder)) == 50


def test_split_is_disjoint_seeded_and_covers_training_set(tiny_mnist):
    a = load_train_validation(tiny_mnist, validation_size=200, seed=3)
    b = load_train_validation(tiny_mnist, validation_size=200, seed=3)
    c = load_train_validation(tiny_mnist, validation_size=200, seed=4)
    assert torch.equal(a.validation.images, b.validation.images)
    assert not torch.equal(a.validation.images, c.validation.images)
    train_rows = {bytes(x.numpy().tobytes()) for x in a.train.images}
    validation_rows = {bytes(x.numpy().tobytes()) for x in a.validation.images}
    assert not train_rows & validation_rows
    assert len(a.train) + len(a.validation) == 1200


def test_train_validation_never_reads_test_files(tmp_path):
    folder = write_tiny_mnist(tmp_path / "mnist", train=300, test=50)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (folder / name).unlink()
    split = load_train_validation(folder, validation_size=100)
    assert len(split.train) == 200
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte"):
        load_test_set(folder)


def test_missing_file_is_named(tmp_path):
    folder = write_tiny_mnist(tmp_path / "mnist", train=300, test=50)
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="train-labels-idx1-ubyte"):
        load_train_validation(folder, validation_size=100)


def test_corrupt_file_is_named(tmp_path):
    folder = write_tiny_mnist(tmp_path / "mnist", train=300, test=50, gz=False)
    with open(folder / "train-images-idx3-ubyte", "r+b") as f:
        f.write(b"\x00\x00\x09\x09")  # wrong magic number
    with pytest.raises(DataError, match="train-images-idx3-ubyte is not a valid MNIST IDX file: "
                                        r"\S"):  # with its reason
        load_train_validation(folder, validation_size=100)


def test_truncated_gzip_is_named(tmp_path):
    folder = write_tiny_mnist(tmp_path / "mnist", train=300, test=50)
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz"):
        load_train_validation(folder, validation_size=100)


def test_mismatched_counts_are_reported(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    images, labels = make_images(300, seed=1)
    write_idx(folder, "train", images, labels[:200], gz=True)
    with pytest.raises(DataError, match="300 images, 200 labels"):
        load_train_validation(folder, validation_size=50)


def test_environment_variable_points_at_data(tmp_path, monkeypatch):
    folder = write_tiny_mnist(tmp_path / "mnist", train=300, test=50)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(folder))
    assert len(load_train_validation(validation_size=100).train) == 200


def test_validation_size_must_leave_training_images(tiny_mnist):
    with pytest.raises(DataError, match="validation size"):
        load_train_validation(tiny_mnist, validation_size=1200)


def test_shipped_real_mnist(monkeypatch):
    """The package's own copy of MNIST: 60,000 training images, 28x28, all ten digits."""
    split = load_train_validation(validation_size=5000, seed=0)
    assert len(split.train) == 55000 and len(split.validation) == 5000
    assert set(split.validation.labels.tolist()) == set(range(10))
    assert os.path.isdir(data.shipped_data_dir())


def test_load_split_is_the_seeded_split_with_a_seeded_train_subset(tiny_mnist):
    """The one loader every trainer uses: the same validation images as the plain split, a train
    subset drawn with the split's seed, and a size over what is left refused."""
    plain = load_train_validation(tiny_mnist, validation_size=200, seed=3)
    split = data.load_split(tiny_mnist, 200, 3, train_size=300)
    assert torch.equal(split.validation.images, plain.validation.images) and split.seed == 3
    assert torch.equal(split.train.images, data.take_subset(plain.train, 300, 3).images)
    assert torch.equal(data.load_split(tiny_mnist, 200, 3).train.images, plain.train.images)
    with pytest.raises(DataError, match="more than the 1,000 training images"):
        data.load_split(tiny_mnist, 200, 3, train_size=1001)
