"""Energy-based models: a Bernoulli RBM trained by contrastive divergence, and Hopfield networks (Hebbian and
modern), on binarised images. `model` picks one; each reads only its own parameters below.

Search spaces name their metric: an RBM sweep ranks by eval/pseudo_log_likelihood or eval/log_likelihood
(AIS), a Hopfield sweep by eval/recall_overlap or eval/recall_accuracy.
"""

from __future__ import annotations

from algorithms.energy.hopfield import RULES, UPDATES
from algorithms.shared_params import DATA_PARAMS, check_data
from orchestration.family import Family
from orchestration.params import Choice, Float, Int

PARAMS = {
    **DATA_PARAMS,
    "model": Choice("rbm", "rbm or hopfield", choices=("rbm", "hopfield")),
    "temperature": Float(1.0, "T of every stochastic unit, which turns on with p = 1 / (1 + exp(-dE / T)); "
                              "RBM: T > 0; Hopfield: 0 is the deterministic sign rule", low=0),
    "iterations": Int(6, "Tune iterations (RBM: epochs_per_iteration epochs each; Hopfield: fresh probes each)",
                      low=1),
    # RBM
    "training": Choice("cd", "rbm: cd (chains start at the data) or pcd (persistent chains)", choices=("cd", "pcd")),
    "k": Int(1, "rbm: Gibbs steps per gradient estimate (CD-k, PCD-k)", low=1),
    "hidden": Int(64, "rbm: hidden units", low=1),
    "lr": Float(0.05, "rbm: learning rate", low=0, low_open=True, high=10.0),
    "momentum": Float(0.5, "rbm: momentum of the updates", low=0.0, high=1.0, high_open=True),
    "weight_decay": Float(1e-4, "rbm: L2 penalty on the weights", low=0.0),
    "batch_size": Int(20, "rbm: images per update (and PCD's persistent chains)", low=1),
    "epochs_per_iteration": Int(5, "rbm: passes over the training images per Tune iteration", low=1),
    "ais_chains": Int(100, "rbm: AIS runs for log Z", low=2),
    "ais_steps": Int(2000, "rbm: AIS intermediate distributions", low=2),
    "sample_steps": Int(1000, "rbm: Gibbs rounds for drawn samples", low=1),
    # Hopfield
    "patterns": Choice("digits", "hopfield: store binarised images of the data set or random +-1 patterns",
                       choices=("digits", "random")),
    "units": Int(256, "hopfield: N for random patterns (images: their pixels)", low=4),
    "load": Float(0.05, "hopfield: stored patterns over N", low=0, low_open=True),
    "rule": Choice("hebbian", "hopfield: hebbian (classical) or modern (Ramsauer et al. 2020)", choices=RULES),
    "update": Choice("async", "hopfield: async (one unit at a time) or sync (all at once)", choices=UPDATES),
    "beta": Float(8.0, "hopfield, modern rule: inverse temperature of the softmax", low=0, low_open=True),
    "flip_fraction": Float(0.1, "hopfield: share of a probe's units flipped", low=0.0, high=0.5),
    "probes": Int(200, "hopfield: corrupted probes per iteration (cycling over the stored patterns)", low=1),
    "max_sweeps": Int(50, "hopfield: sweeps before a run stops without a fixed point", low=1),
}


def check_config(config: dict) -> str | None:
    if config["model"] == "rbm" and config["temperature"] <= 0:
        return "temperature must be > 0 for an RBM (its units turn on with p = 1 / (1 + exp(-dE / T)))"
    if config["model"] == "hopfield" and config["patterns"] == "random":
        return None
    return check_data(config)


FAMILY = Family(
    name="energy",
    experiment="algorithms.energy.experiment:energy_experiment",
    params=PARAMS,
    metrics=("eval/pseudo_log_likelihood", "eval/log_likelihood", "eval/reconstruction_error",
             "eval/recall_overlap", "eval/recall_accuracy"),
    default_metric="eval/pseudo_log_likelihood",
    default_mode="max",
    smoke={"iterations": 1, "epochs_per_iteration": 1, "ais_chains": 10, "ais_steps": 50, "sample_steps": 10,
           "probes": 20},
    gpu_fraction=0.25,
    check_config=check_config,
    use="algorithms.energy.serving:use",
    mutable=("lr", "momentum"),
    # AIS's estimate of log Z is biased low at few chains and steps (Salakhutdinov & Murray 2008)
    measured_with={"eval/log_likelihood": ("ais_chains", "ais_steps"), "eval/recall_accuracy": ("probes",)},
)
