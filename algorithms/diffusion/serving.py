"""A trained diffusion model as an MLflow pyfunc, and `python -m orchestration.use` for it.

The pyfunc carries what sampling needs besides weights: the noise schedule, T, the prediction target
and the sampler. `predict` takes a DataFrame with one row per batch to draw, column `num_samples`
and, optionally, `seed`, `sampler` (ddpm | ddim) and `sample_steps`; it returns the images of every
row, in order, as float32 (N, C, H, W) in [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch

from algorithms.pyfunc import row_value, state_export

WEIGHTS = "sampler_state"
# the config keys that rebuild the network and the process; the rest of a trial's config is training
MODEL_KEYS = ("schedule", "timesteps", "zero_terminal_snr", "prediction", "base_channels", "channel_mults",
              "attention_levels", "sampler", "sample_steps", "seed")
DESCRIPTION = ("DataFrame rows {num_samples, seed?, sampler? (ddpm|ddim), sample_steps?} -> float32 images "
               "(N, C, H, W) in [0, 1], the rows' samples in order")


class DiffusionSampler(mlflow.pyfunc.PythonModel):
    """The EMA U-Net with its schedule and sampler; loads on CUDA when present."""

    def load_context(self, context) -> None:
        from algorithms.device import select_device
        from algorithms.diffusion.process import GaussianDiffusion
        from algorithms.diffusion.unet import UNet

        state = torch.load(context.artifacts[WEIGHTS], map_location="cpu", weights_only=False)
        self.config, self.shape = state["config"], tuple(state["shape"])
        self.device = select_device()
        cfg = self.config
        self.diffusion = GaussianDiffusion.from_schedule(cfg["schedule"], cfg["timesteps"], cfg["zero_terminal_snr"],
                                                         prediction=cfg["prediction"], device=self.device)
        self.model = UNet(in_channels=self.shape[0], base_channels=cfg["base_channels"],
                          channel_mults=tuple(cfg["channel_mults"]), attention_levels=tuple(cfg["attention_levels"]))
        self.model.load_state_dict(state["weights"])
        self.model.to(self.device).eval()

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        from algorithms.diffusion.samplers import sample

        images = []
        for row in model_input.to_dict("records"):
            seed = row_value(row, "seed", self.config["seed"])
            generator = torch.Generator(device=self.device).manual_seed(int(seed))
            x = sample(self.diffusion, self.model, (int(row["num_samples"]), *self.shape),
                       sampler=row_value(row, "sampler", self.config["sampler"]),
                       steps=int(row_value(row, "sample_steps", self.config["sample_steps"])),
                       generator=generator, device=self.device)
            images.append(((x.clamp(-1, 1) + 1) / 2).float().cpu().numpy())
        return np.concatenate(images) if images else np.zeros((0, *self.shape), dtype=np.float32)


def export(trainer, config: dict, directory: Path):
    """The trainer's EMA model as a pyfunc ModelExport."""
    from mlflow.types import ColSpec

    state = {"config": {k: config[k] for k in MODEL_KEYS}, "shape": list(trainer.data.shape),
             "weights": {k: v.cpu() for k, v in trainer.ema.model.state_dict().items()}}
    inputs = [ColSpec("long", "num_samples"), ColSpec("long", "seed", required=False),
              ColSpec("string", "sampler", required=False), ColSpec("long", "sample_steps", required=False)]
    example = pd.DataFrame({"num_samples": [2], "seed": [0], "sampler": ["ddim"], "sample_steps": [2]})
    return state_export(DiffusionSampler(), state, directory / "sampler.pt", WEIGHTS, inputs, example,
                        trainer.data.shape, DESCRIPTION)


def use(model, run_params: dict, options, out_dir: Path) -> dict:
    """A grid of `options.samples` samples; returns metrics and the files written."""
    from algorithms.plots import save_image_grid

    row = {"num_samples": options.samples, "seed": options.seed if options.seed is not None else 0}
    if options.sampler:
        row["sampler"] = options.sampler
    if options.sample_steps:
        row["sample_steps"] = options.sample_steps
    images = torch.as_tensor(model.predict(pd.DataFrame([row])))
    path = out_dir / "samples.png"
    save_image_grid(images * 2 - 1, path, nrow=int(np.ceil(np.sqrt(len(images)))))
    pixels = images.flatten(1)
    return {"metrics": {"samples": len(images), "sample_pixel_mean": float(pixels.mean()),
                        "sample_pixel_std": float(pixels.std())},
            "files": [path], "summary": f"{len(images)} samples -> {path}"}
