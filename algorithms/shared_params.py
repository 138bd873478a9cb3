"""Parameter specs every image family shares (data set selection, seed, device and training speed-ups)."""

from __future__ import annotations

from algorithms.data import DATASETS
from orchestration.params import Bool, Choice, Int, Text

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

# training speed-ups, implemented in algorithms/speedups.py (kept apart: validating a sweep imports no torch)
SPEEDUP_PARAMS = {
    "precision": Choice("fp32", "training arithmetic: fp32, or bf16 / fp16 autocast (fp16 with a GradScaler); "
                                "evaluation always runs in fp32", choices=("fp32", "bf16", "fp16")),
    "compile": Bool(False, "torch.compile the trained network (the first steps pay the compile time)"),
    "channels_last": Bool(False, "channels-last memory format for the convolutional network and its inputs"),
}


def check_data(config: dict) -> str | None:
    if config["dataset"] == "folder" and not config["folder"]:
        return "dataset folder needs the parameter folder (an ImageFolder root)"
    return None
