"""GANs (Goodfellow et al. 2014) in DCGAN form: minimax, non-saturating and hinge losses, R1, TTUR, EMA,
class-conditional; scored by the same FID as diffusion, and by mode coverage."""

from __future__ import annotations

from algorithms.gan.losses import LOSSES
from algorithms.shared_params import DATA_PARAMS, check_data
from orchestration.family import Family
from orchestration.params import Bool, Choice, Float, Int, Text

PARAMS = {
    **DATA_PARAMS,
    "loss": Choice("non_saturating", "GAN objective: minimax (saturating G loss), non_saturating or hinge",
                   choices=LOSSES),
    "r1_gamma": Float(0.0, "weight of the R1 gradient penalty on real images (0: off)", low=0),
    "lr_g": Float(2e-4, "generator's Adam learning rate", low=0, low_open=True, high=1.0),
    "lr_d": Float(2e-4, "discriminator's Adam learning rate (TTUR: set it apart from lr_g)", low=0, low_open=True,
                  high=1.0),
    "beta1": Float(0.5, "Adam's beta1, the momentum coefficient (DCGAN: 0.5)", low=0.0, high=1.0, high_open=True),
    "beta2": Float(0.999, "Adam's beta2", low=0.0, high=1.0, high_open=True),
    "d_steps": Int(1, "discriminator steps per generator step", low=1),
    "ema_decay": Float(0.999, "EMA of the generator's weights, which draws every sample (0: the live generator)",
                       low=0.0, high=1.0, high_open=True),
    "conditional": Bool(False, "class-conditional generator and projection discriminator"),
    "latent_dim": Int(32, "size of z", low=1),
    "width": Int(32, "channels of the networks at full resolution (doubled at each halving)", low=4),
    "batch_size": Int(64, low=1),
    "steps_per_iteration": Int(500, "generator steps per Tune iteration", low=1),
    "iterations": Int(8, "Tune iterations (each ends with FID and mode coverage)", low=1),
    "eval_samples": Int(500, "samples per FID evaluation (as diffusion's, so the numbers compare)", low=10),
    "coverage_samples": Int(1000, "samples whose classes give mode coverage and class KL", low=10),
    "cache_dir": Text("~/.cache/ray-sweeps", "where the FID classifier is cached"),
}


FAMILY = Family(
    name="gan",
    experiment="algorithms.gan.experiment:GANExperiment",
    params=PARAMS,
    metrics=("eval/fid", "eval/mode_coverage", "eval/class_kl", "train/d_loss", "train/g_loss"),
    default_metric="eval/fid",
    default_mode="min",
    smoke={"iterations": 2, "steps_per_iteration": 5, "eval_samples": 64, "coverage_samples": 100},
    gpu_fraction=0.25,
    check_config=check_data,
    use="algorithms.gan.serving:use",
    mutable=("lr_g", "lr_d"),
    # FID's bias falls with its sample count; coverage's with the samples it counts
    measured_with={"eval/fid": ("eval_samples",), "eval/mode_coverage": ("coverage_samples",),
                   "eval/class_kl": ("coverage_samples",)},
)
