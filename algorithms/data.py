"""Image data sets by name, loaded into memory as float tensors in [-1, 1].

`digits` (scikit-learn's bundled 8x8 digits) needs no download and is the default.
`mnist`, `fashion_mnist` and `cifar10` come from torchvision and are downloaded on
first use into `data_dir`; `folder` reads an ImageFolder tree (one sub-folder per class).
In-memory tensors keep single-core training free of DataLoader overhead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "folder")


@dataclass
class ImageData:
    """Images (N, C, H, W) in [-1, 1] and integer labels (N,)."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def split(self, test_fraction: float = 0.2, seed: int = 0) -> tuple["ImageData", "ImageData"]:
        """A fixed, seeded train/test split (stratification is unnecessary at these sizes)."""
        order = torch.randperm(len(self.labels), generator=torch.Generator().manual_seed(seed))
        n_test = int(round(len(order) * test_fraction))
        test, train = order[:n_test], order[n_test:]
        return (ImageData(self.name, self.images[train], self.labels[train], self.num_classes),
                ImageData(self.name, self.images[test], self.labels[test], self.num_classes))


def _from_uint8(array: np.ndarray, labels, name: str, num_classes: int) -> ImageData:
    """uint8 (N, H, W[, C]) -> float (N, C, H, W) in [-1, 1]."""
    x = torch.as_tensor(np.asarray(array), dtype=torch.float32)
    if x.ndim == 3:
        x = x[:, None]
    else:
        x = x.permute(0, 3, 1, 2)
    return ImageData(name, x / 127.5 - 1.0, torch.as_tensor(np.asarray(labels), dtype=torch.long), num_classes)


def load_digits() -> ImageData:
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0 * 2.0 - 1.0
    return ImageData("digits", images, torch.as_tensor(bunch.target, dtype=torch.long), 10)


def _load_torchvision(name: str, data_dir: Path, train: bool, download: bool) -> ImageData:
    import torchvision

    cls = {"mnist": torchvision.datasets.MNIST, "fashion_mnist": torchvision.datasets.FashionMNIST,
           "cifar10": torchvision.datasets.CIFAR10}[name]
    try:
        ds = cls(root=str(data_dir), train=train, download=download)
    except RuntimeError as err:  # torchvision says "Dataset not found" when offline
        raise RuntimeError(f"data set {name!r} is not in {data_dir} and could not be downloaded: {err}") from err
    data = ds.data.numpy() if isinstance(ds.data, torch.Tensor) else ds.data
    return _from_uint8(data, ds.targets, name, len(ds.classes))


def load_folder(path: Path, image_size: int, channels: int) -> ImageData:
    """ImageFolder tree, resized to image_size x image_size, grey (1) or RGB (3) channels."""
    from torchvision.datasets import ImageFolder

    if not path.is_dir():
        raise FileNotFoundError(f"image folder {path} does not exist")
    ds = ImageFolder(str(path))
    mode = "L" if channels == 1 else "RGB"
    images, labels = [], []
    for file, label in ds.samples:
        img = ds.loader(file).convert(mode).resize((image_size, image_size))
        images.append(np.asarray(img, dtype=np.uint8))
        labels.append(label)
    if not images:
        raise ValueError(f"image folder {path} holds no images")
    return _from_uint8(np.stack(images), labels, "folder", len(ds.classes))


def load_dataset(name: str, data_dir: str | Path = "data", train: bool = True, download: bool = True,
                 folder: str | Path | None = None, image_size: int = 32, channels: int = 3) -> ImageData:
    """Load a data set by name; see the module docstring for what each name means."""
    data_dir = Path(data_dir).expanduser()
    if name == "digits":
        return load_digits()
    if name in ("mnist", "fashion_mnist", "cifar10"):
        return _load_torchvision(name, data_dir, train, download)
    if name == "folder":
        if folder is None:
            raise ValueError("dataset 'folder' needs a folder path")
        return load_folder(Path(folder).expanduser(), image_size, channels)
    raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")


def dataset_from_config(config: dict) -> ImageData:
    """The data set a trial's DATA_PARAMS (algorithms/shared_params.py) name."""
    return load_dataset(config["dataset"], data_dir=config["data_dir"], folder=config.get("folder"),
                        image_size=config["image_size"], channels=config["channels"])


class DeviceImages:
    """A training set where batches are cheapest to draw. On a GPU it is copied to the device once when it
    fits in `budget` of the device's free memory, so no step copies from the host. Otherwise it stays in
    pinned host memory and each batch is gathered into a pinned staging buffer and copied without
    blocking. On the CPU it is used as it is."""

    def __init__(self, images: torch.Tensor, device: torch.device, budget: float = 0.25):
        self.device = device
        self.resident = device.type != "cuda" or images.nbytes <= budget * torch.cuda.mem_get_info(device)[0]
        self.images = images.to(device) if self.resident else images.pin_memory()
        self._staging, self._copied = None, None

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, idx: torch.Tensor) -> torch.Tensor:
        if self.resident:
            return self.images[idx.to(self.device)]
        if self._copied is not None:
            self._copied.synchronize()  # the last batch has left the staging buffer
        idx = idx.cpu()
        if self._staging is None or len(self._staging) != len(idx):
            self._staging = torch.empty((len(idx), *self.images.shape[1:]), dtype=self.images.dtype).pin_memory()
        torch.index_select(self.images, 0, idx, out=self._staging)
        out = self._staging.to(self.device, non_blocking=True)
        self._copied = torch.cuda.Event()
        self._copied.record()
        return out
