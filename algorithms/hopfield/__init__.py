"""Hopfield networks: Hebbian storage of binarised images or random +-1 patterns, recall by synchronous or
asynchronous updates (stochastic at a temperature T), and the modern continuous update (Ramsauer et al.
2020); scored by recall from corrupted copies. A sweep over `load` measures capacity."""

from __future__ import annotations

from algorithms.hopfield.network import RULES, UPDATES
from algorithms.shared_params import DATA_PARAMS, check_data
from orchestration.family import Family
from orchestration.params import Choice, Float, Int

PARAMS = {
    **DATA_PARAMS,
    "patterns": Choice("digits", "store binarised images of the data set, or random +-1 patterns",
                       choices=("digits", "random")),
    "units": Int(256, "N for random patterns (images: their pixels)", low=4),
    "load": Float(0.05, "stored patterns over N", low=0, low_open=True),
    "rule": Choice("hebbian", "hebbian (classical) or modern (Ramsauer et al. 2020)", choices=RULES),
    "update": Choice("async", "async (one unit at a time) or sync (all at once)", choices=UPDATES),
    "temperature": Float(0.0, "T of the units' updates: 0 is the deterministic sign rule, T > 0 turns a unit on "
                              "with p = 1 / (1 + exp(-2 h / T))", low=0.0),
    "beta": Float(8.0, "modern rule: inverse temperature of the softmax over stored patterns", low=0, low_open=True),
    "flip_fraction": Float(0.1, "share of a probe's units flipped", low=0.0, high=0.5),
    "probes": Int(200, "corrupted probes per iteration (cycling over the stored patterns)", low=1),
    "max_sweeps": Int(50, "sweeps before a run stops without a fixed point", low=1),
    "iterations": Int(1, "Tune iterations, each with fresh probes", low=1),
}


def check_config(config: dict) -> str | None:
    return None if config["patterns"] == "random" else check_data(config)


FAMILY = Family(
    name="hopfield",
    experiment="algorithms.hopfield.experiment:HopfieldExperiment",
    params=PARAMS,
    metrics=("eval/recall_overlap", "eval/recall_accuracy", "eval/energy_end"),
    default_metric="eval/recall_overlap",
    default_mode="max",
    smoke={"iterations": 1, "probes": 20},
    gpu_fraction=0.0,  # recall runs on the CPU
    check_config=check_config,
    use="algorithms.hopfield.serving:use",
    measured_with={"eval/recall_accuracy": ("probes",), "eval/recall_overlap": ("probes",)},
)
