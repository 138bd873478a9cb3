"""Bernoulli restricted Boltzmann machines on binarised images, trained by contrastive divergence (CD-k) or
persistent CD, at a temperature T; scored on held-out images by pseudo-likelihood, reconstruction error and
an annealed-importance-sampling estimate of the log-likelihood."""

from __future__ import annotations

from algorithms.shared_params import DATA_PARAMS, check_data
from orchestration.family import Family
from orchestration.params import Bool, Choice, Float, Int

PARAMS = {
    **DATA_PARAMS,
    "training": Choice("cd", "cd (chains start at the data) or pcd (persistent chains)", choices=("cd", "pcd")),
    "k": Int(1, "Gibbs steps per gradient estimate (CD-k, PCD-k)", low=1),
    "temperature": Float(1.0, "T of every unit, which turns on with p = 1 / (1 + exp(-dE / T)); the likelihood "
                              "is the tempered model's", low=0, low_open=True),
    "hidden": Int(64, "hidden units", low=1),
    "lr": Float(0.05, "learning rate", low=0, low_open=True, high=10.0),
    "momentum": Float(0.5, "momentum of the updates", low=0.0, high=1.0, high_open=True),
    "weight_decay": Float(1e-4, "L2 penalty on the weights", low=0.0),
    "batch_size": Int(20, "images per update (and PCD's persistent chains)", low=1),
    "shuffle": Bool(True, "reshuffle the training images every epoch (false: the split's fixed random order, as "
                          "scikit-learn's BernoulliRBM)"),
    "epochs_per_iteration": Int(5, "passes over the training images per Tune iteration", low=1),
    "iterations": Int(6, "Tune iterations (each ends with the held-out scores)", low=1),
    "ais_chains": Int(100, "AIS runs for log Z", low=2),
    "ais_steps": Int(2000, "AIS intermediate distributions", low=2),
    "sample_steps": Int(1000, "Gibbs rounds for drawn samples", low=1),
}


FAMILY = Family(
    name="rbm",
    experiment="algorithms.rbm.experiment:RBMExperiment",
    params=PARAMS,
    metrics=("eval/log_likelihood", "eval/pseudo_log_likelihood", "eval/reconstruction_error"),
    default_metric="eval/log_likelihood",
    default_mode="max",
    smoke={"iterations": 1, "epochs_per_iteration": 1, "ais_chains": 10, "ais_steps": 50, "sample_steps": 10},
    gpu_fraction=0.25,
    check_config=check_data,
    use="algorithms.rbm.serving:use",
    mutable=("lr", "momentum"),
    # AIS's estimate of log Z is biased low at few chains and steps (Salakhutdinov & Murray 2008)
    measured_with={"eval/log_likelihood": ("ais_chains", "ais_steps")},
)
