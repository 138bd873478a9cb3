"""A trained RBM as an MLflow pyfunc, and `python -m orchestration.use` for it: `predict` takes DataFrame rows
{num_samples, seed?, gibbs_steps?} and returns float32 images (N, C, H, W) in [0, 1], the visible probabilities
after that many rounds of Gibbs sampling from noise."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch

from algorithms.pyfunc import row_value, state_export

WEIGHTS = "model_state"


class RBMSampler(mlflow.pyfunc.PythonModel):
    """The RBM's weights, biases and temperature; samples on the CPU."""

    def load_context(self, context) -> None:
        from algorithms.rbm.model import RBM

        state = torch.load(context.artifacts[WEIGHTS], map_location="cpu", weights_only=False)
        self.shape, self.config = tuple(state["shape"]), state["config"]
        self.rbm = RBM(*state["rbm"]["W"].shape)
        self.rbm.load_state_dict(state["rbm"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        from algorithms.rbm.trainer import sample_images

        out = [sample_images(self.rbm, self.shape, int(row["num_samples"]),
                             int(row_value(row, "gibbs_steps", self.config["sample_steps"])),
                             int(row_value(row, "seed", self.config["seed"])), "cpu")
               for row in model_input.to_dict("records")]
        return ((torch.cat(out) + 1) / 2).numpy().astype(np.float32) if out else np.zeros((0, *self.shape), np.float32)


def export(trainer, config: dict, directory: Path):
    """The trainer's RBM (weights and temperature) as a pyfunc ModelExport."""
    from mlflow.types import ColSpec

    state = {"rbm": trainer.rbm.state_dict(), "shape": list(trainer.data.shape),
             "config": {k: config[k] for k in ("sample_steps", "seed")}}
    inputs = [ColSpec("long", "num_samples"), ColSpec("long", "seed", required=False),
              ColSpec("long", "gibbs_steps", required=False)]
    return state_export(RBMSampler(), state, directory / "rbm.pt", WEIGHTS, inputs,
                        pd.DataFrame({"num_samples": [2], "gibbs_steps": [2]}), trainer.data.shape,
                        "DataFrame rows {num_samples, seed?, gibbs_steps?} -> float32 images (N, C, H, W) in [0, 1]")


def use(model, run_params: dict, options, out_dir: Path) -> dict:
    """A grid of `options.samples` samples drawn by Gibbs sampling from noise."""
    from algorithms.plots import save_image_grid

    seed = options.seed if options.seed is not None else 0
    path = out_dir / "samples.png"
    images = torch.as_tensor(model.predict(pd.DataFrame([{"num_samples": options.samples, "seed": seed}])))
    save_image_grid(images * 2 - 1, path, nrow=int(np.ceil(np.sqrt(len(images)))))
    return {"metrics": {"samples": len(images), "sample_pixel_mean": float(images.mean())},
            "files": [path], "summary": f"{len(images)} samples -> {path}"}
