"""DDPM (Ho et al. 2020) with configurable noise schedules, targets and loss weightings."""

from __future__ import annotations

from algorithms.shared_params import DATA_PARAMS, SPEEDUP_PARAMS, check_data
from algorithms.diffusion.process import PREDICTIONS, WEIGHTINGS
from algorithms.diffusion.samplers import SAMPLERS
from algorithms.diffusion.schedules import SCHEDULES
from orchestration.family import Family
from orchestration.params import Bool, Choice, Float, Int, IntList, Text

PARAMS = {
    **DATA_PARAMS,
    **SPEEDUP_PARAMS,
    "schedule": Choice("cosine", "noise schedule", choices=SCHEDULES),
    "timesteps": Int(1000, "diffusion steps T", low=1),
    "zero_terminal_snr": Bool(False, "rescale so alpha_bar_T = 0 (Lin et al. 2024)"),
    "prediction": Choice("eps", "what the network predicts", choices=PREDICTIONS),
    "loss_weighting": Choice("uniform", "uniform (L_simple) or min-SNR-gamma", choices=WEIGHTINGS),
    "min_snr_gamma": Float(5.0, "gamma of min-SNR weighting", low=0, low_open=True),
    "lr": Float(1e-3, "Adam learning rate", low=0, low_open=True, high=1.0),
    "batch_size": Int(128, low=1),
    "steps_per_iteration": Int(250, "optimizer steps per Tune iteration", low=1),
    "iterations": Int(8, "Tune iterations (each ends with an FID evaluation)", low=1),
    "base_channels": Int(16, "U-Net width", low=4),
    "channel_mults": IntList([1, 2], "U-Net width multiplier per resolution level", low=1, min_length=1),
    "attention_levels": IntList([], "levels with self-attention (the middle block always has it)", low=0),
    "ema_decay": Float(0.995, low=0.0, high=1.0, high_open=True),
    "grad_clip": Float(1.0, low=0, low_open=True),
    "random_flip": Bool(False, "horizontal flips (not for digits)"),
    "sampler": Choice("ddim", "sampler for evaluation and grids", choices=SAMPLERS),
    "sample_steps": Int(50, "DDIM steps (ddpm always uses T)", low=1),
    "eval_samples": Int(500, "samples per FID evaluation", low=10),
    "cache_dir": Text("~/.cache/ray-sweeps", "where the FID classifier is cached"),
}


def check_config(config: dict) -> str | None:
    if config["zero_terminal_snr"] and config["prediction"] == "eps":
        return "zero_terminal_snr needs prediction v or x0 (epsilon prediction is undefined at SNR 0)"
    if check_data(config):
        return check_data(config)
    if any(level >= len(config["channel_mults"]) for level in config["attention_levels"]):
        return "attention_levels must index into channel_mults"
    return None



FAMILY = Family(
    name="diffusion",
    experiment="algorithms.diffusion.experiment:DiffusionExperiment",
    params=PARAMS,
    metrics=("eval/fid", "train/loss", "train/images_per_s"),
    default_metric="eval/fid",
    default_mode="min",
    smoke={"iterations": 2, "steps_per_iteration": 5, "eval_samples": 64, "sample_steps": 5, "sampler": "ddim"},
    gpu_fraction=0.25,
    check_config=check_config,
    use="algorithms.diffusion.serving:use",
    mutable=("lr", "ema_decay", "grad_clip"),
    measured_with={"eval/fid": ("eval_samples",)},  # FID's bias falls with its sample count (Chong & Forsyth 2020)
)
