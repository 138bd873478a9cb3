"""A trained GAN generator (its EMA weights) as an MLflow pyfunc, and `python -m orchestration.use` for it.

`predict` takes a DataFrame with one row per batch to draw: column `num_samples` and, optionally, `seed`
and `label` (a class, for a class-conditional generator; without it classes are drawn as often as the
training data has them). It returns the images of every row, in order, as float32 (N, C, H, W) in [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch

from algorithms.pyfunc import row_value, state_export

WEIGHTS = "generator_state"
MODEL_KEYS = ("latent_dim", "width", "conditional", "seed")
DESCRIPTION = ("DataFrame rows {num_samples, seed?, label? (conditional generators)} -> float32 images "
               "(N, C, H, W) in [0, 1], the rows' samples in order")


class GANSampler(mlflow.pyfunc.PythonModel):
    """The EMA generator; loads on CUDA when present."""

    def load_context(self, context) -> None:
        from algorithms.device import select_device
        from algorithms.gan.networks import Generator

        state = torch.load(context.artifacts[WEIGHTS], map_location="cpu", weights_only=False)
        self.config, self.shape = state["config"], tuple(state["shape"])
        self.class_share = torch.as_tensor(state["class_share"], dtype=torch.float32)
        self.device = select_device()
        classes = len(self.class_share) if self.config["conditional"] else 0
        self.model = Generator(self.shape, self.config["latent_dim"], self.config["width"], classes)
        self.model.load_state_dict(state["weights"])
        self.model.to(self.device).eval()

    @torch.no_grad()
    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        images = []
        for row in model_input.to_dict("records"):
            n = int(row["num_samples"])
            gen = torch.Generator().manual_seed(int(row_value(row, "seed", self.config["seed"])))
            z = torch.randn(n, self.config["latent_dim"], generator=gen)
            labels = None
            if self.config["conditional"]:
                label = row_value(row, "label", None)
                labels = (torch.full((n,), int(label)) if label is not None
                          else torch.multinomial(self.class_share, n, replacement=True, generator=gen))
            x = self.model(z.to(self.device), None if labels is None else labels.to(self.device))
            images.append(((x.clamp(-1, 1) + 1) / 2).float().cpu().numpy())
        return np.concatenate(images) if images else np.zeros((0, *self.shape), dtype=np.float32)


def export(trainer, config: dict, directory: Path):
    """The trainer's EMA generator as a pyfunc ModelExport."""
    from mlflow.types import ColSpec

    from algorithms.gan.coverage import class_histogram

    data = trainer.data
    state = {"config": {k: config[k] for k in MODEL_KEYS}, "shape": list(data.shape),
             "class_share": class_histogram(data.labels.numpy(), data.num_classes).tolist(),
             "weights": {k: v.cpu() for k, v in trainer.ema.model.state_dict().items()}}
    inputs = [ColSpec("long", "num_samples"), ColSpec("long", "seed", required=False),
              ColSpec("long", "label", required=False)]
    return state_export(GANSampler(), state, directory / "generator.pt", WEIGHTS, inputs,
                        pd.DataFrame({"num_samples": [2], "seed": [0]}), data.shape, DESCRIPTION)


def use(model, run_params: dict, options, out_dir: Path) -> dict:
    """A grid of `options.samples` samples (a conditional generator: one row per class); metrics and files."""
    from algorithms.plots import save_image_grid

    seed = options.seed if options.seed is not None else 0
    sampler = model.unwrap_python_model()  # a GANSampler, loaded
    conditional, classes = bool(sampler.config["conditional"]), len(sampler.class_share)
    if conditional:
        per_class = max(1, options.samples // classes)
        rows = [{"num_samples": per_class, "seed": seed + label, "label": label} for label in range(classes)]
        nrow = per_class
    else:
        rows, nrow = [{"num_samples": options.samples, "seed": seed}], int(np.ceil(np.sqrt(options.samples)))
    images = torch.as_tensor(model.predict(pd.DataFrame(rows)))
    path = out_dir / "samples.png"
    save_image_grid(images * 2 - 1, path, nrow=nrow)
    pixels = images.flatten(1)
    return {"metrics": {"samples": len(images), "sample_pixel_mean": float(pixels.mean()),
                        "sample_pixel_std": float(pixels.std())},
            "files": [path], "summary": f"{len(images)} samples"
                                        + (f", {nrow} per class (one row each)" if conditional else "") + f" -> {path}"}
