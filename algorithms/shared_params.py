"""Parameter specs every image family shares (data set selection, seed and device)."""

from __future__ import annotations

from algorithms.data import DATASETS
from orchestration.params import Choice, Int, Text

DATA_PARAMS = {
    "dataset": Choice("digits", "data set name", choices=DATASETS),
    "data_dir": Text("~/.cache/ray-sweeps/data", "where torchvision data sets are downloaded"),
    "folder": Text(None, "ImageFolder root for dataset=folder", optional=True),
    "image_size": Int(32, "side length for dataset=folder", low=4),
    "channels": Choice(3, "1 (grey) or 3 (RGB) for dataset=folder", choices=(1, 3)),
    "seed": Int(0, low=0),
    "device": Choice("auto", "auto: CUDA when torch sees a GPU (the one Ray gave the trial), else CPU; cpu or cuda "
                             "to force one", choices=("auto", "cpu", "cuda")),
}


def check_data(config: dict) -> str | None:
    if config["dataset"] == "folder" and not config["folder"]:
        return "dataset folder needs the parameter folder (an ImageFolder root)"
    return None
