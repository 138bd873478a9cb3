"""Data sets by name: bundled digits, an ImageFolder tree, and torchvision's MNIST reader on local files."""

import struct

import numpy as np
import pytest
from PIL import Image

from algorithms.data import load_dataset


def test_digits_are_scaled_to_minus_one_one():
    data = load_dataset("digits")
    assert data.images.shape == (1797, 1, 8, 8)
    assert data.images.min() == -1.0 and data.images.max() == 1.0
    assert sorted(data.labels.unique().tolist()) == list(range(10))
    train, test = data.split(0.2, seed=0)
    assert len(train.labels) + len(test.labels) == 1797 and len(test.labels) == 359


def test_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    data = load_dataset("folder", folder=tmp_path, image_size=16, channels=3)
    assert data.images.shape == (6, 3, 16, 16) and data.num_classes == 2
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert -1.0 <= data.images.min() and data.images.max() <= 1.0
    grey = load_dataset("folder", folder=tmp_path, image_size=8, channels=1)
    assert grey.images.shape == (6, 1, 8, 8)


def _write_idx(path, array: np.ndarray) -> None:
    magic = {3: 0x0803, 1: 0x0801}[array.ndim]
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape))
        f.write(array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_torchvision_loader_reads_local_idx_files(tmp_path, name, folder):
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    images = np.arange(5 * 28 * 28).reshape(5, 28, 28) % 256
    for split in ("train", "t10k"):
        _write_idx(raw / f"{split}-images-idx3-ubyte", images)
        _write_idx(raw / f"{split}-labels-idx1-ubyte", np.array([3, 1, 4, 1, 5]))
    data = load_dataset(name, data_dir=tmp_path, download=False)
    assert data.images.shape == (5, 1, 28, 28) and data.num_classes == 10
    assert data.labels.tolist() == [3, 1, 4, 1, 5]
    assert data.images[0, 0, 0, 1].item() == pytest.approx(1 / 127.5 - 1)


def test_missing_data_set_says_where_it_looked(tmp_path):
    with pytest.raises(RuntimeError, match="is not in .* and could not be downloaded"):
        load_dataset("mnist", data_dir=tmp_path, download=False)
    with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
        load_dataset("svhn")
    with pytest.raises(FileNotFoundError):
        load_dataset("folder", folder=tmp_path / "nope")
