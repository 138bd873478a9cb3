"""Energy models as MLflow pyfuncs, and `python -m orchestration.use` for them.

- RBM: `predict` takes DataFrame rows {num_samples, seed?, gibbs_steps?} and returns float32 images
  (N, C, H, W) in [0, 1]: the visible probabilities after that many rounds of Gibbs sampling from noise.
- Hopfield: `predict` takes DataFrame rows {num_probes, seed?, flip_fraction?, update?}: that many stored
  patterns, each with a share of its units flipped, run to a fixed point; it returns float32 (N, 3, units):
  for each probe, its stored pattern, the corrupted probe and the recalled state, in +-1.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch

from algorithms.diffusion.serving import row_value

WEIGHTS = "energy_state"


class RBMSampler(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from algorithms.energy.rbm import RBM

        state = torch.load(context.artifacts[WEIGHTS], map_location="cpu", weights_only=False)
        self.shape, self.config = tuple(state["shape"]), state["config"]
        self.rbm = RBM(*state["rbm"]["W"].shape)
        self.rbm.load_state_dict(state["rbm"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        from algorithms.energy.rbm_trainer import sample_images

        out = [sample_images(self.rbm, self.shape, int(row["num_samples"]),
                             int(row_value(row, "gibbs_steps", self.config["sample_steps"])),
                             int(row_value(row, "seed", self.config["seed"])), "cpu")
               for row in model_input.to_dict("records")]
        return ((torch.cat(out) + 1) / 2).numpy().astype(np.float32) if out else np.zeros((0, *self.shape), np.float32)


class HopfieldRecall(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from algorithms.energy.hopfield import Hopfield

        state = torch.load(context.artifacts[WEIGHTS], map_location="cpu", weights_only=False)
        self.config, self.shape = state["config"], state["shape"]
        self.network = Hopfield(state["patterns"], self.config["rule"], self.config["beta"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        from algorithms.energy.hopfield import corrupt

        out = []
        for row in model_input.to_dict("records"):
            gen = torch.Generator().manual_seed(int(row_value(row, "seed", self.config["seed"])))
            patterns = self.network.patterns
            targets = patterns[torch.arange(int(row["num_probes"])) % len(patterns)]
            probes = corrupt(targets, float(row_value(row, "flip_fraction", self.config["flip_fraction"])), gen)
            run = self.network.recall(probes, row_value(row, "update", self.config["update"]), 0.0,
                                      self.config["max_sweeps"], gen)
            out.append(torch.stack([targets, probes, torch.where(run["states"] >= 0, 1.0, -1.0)], dim=1))
        units = self.network.units
        return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, 3, units), np.float32)


def _export(model, state: dict, directory: Path, inputs: list, example: pd.DataFrame, output_shape: tuple,
            description: str):
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    from orchestration.family import ModelExport

    path = directory / "energy.pt"
    torch.save(state, path)
    signature = ModelSignature(inputs=Schema(inputs),
                               outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *output_shape))]))
    return ModelExport("pyfunc", model, signature, example, description, artifacts={WEIGHTS: str(path)})


def export_rbm(trainer, config: dict, directory: Path):
    from mlflow.types import ColSpec

    state = {"rbm": trainer.rbm.state_dict(), "shape": list(trainer.data.shape),
             "config": {k: config[k] for k in ("sample_steps", "seed")}}
    inputs = [ColSpec("long", "num_samples"), ColSpec("long", "seed", required=False),
              ColSpec("long", "gibbs_steps", required=False)]
    return _export(RBMSampler(), state, directory, inputs, pd.DataFrame({"num_samples": [2], "gibbs_steps": [2]}),
                   trainer.data.shape, "DataFrame rows {num_samples, seed?, gibbs_steps?} -> float32 images "
                                       "(N, C, H, W) in [0, 1]")


def export_hopfield(network, shape, config: dict, directory: Path):
    from mlflow.types import ColSpec

    state = {"patterns": network.patterns, "shape": shape,
             "config": {k: config[k] for k in ("rule", "beta", "update", "flip_fraction", "max_sweeps", "seed")}}
    inputs = [ColSpec("long", "num_probes"), ColSpec("long", "seed", required=False),
              ColSpec("double", "flip_fraction", required=False), ColSpec("string", "update", required=False)]
    return _export(HopfieldRecall(), state, directory, inputs, pd.DataFrame({"num_probes": [2]}),
                   (3, network.units), "DataFrame rows {num_probes, seed?, flip_fraction?, update?} -> float32 "
                                       "(N, 3, units) in +-1: stored pattern, corrupted probe, recalled state")


def use(model, run_params: dict, options, out_dir: Path) -> dict:
    """RBM: a grid of samples. Hopfield: recall from corrupted patterns (rows: stored, corrupted, recalled)."""
    from algorithms.plots import save_image_grid

    seed = options.seed if options.seed is not None else 0
    inner = model.unwrap_python_model()
    path = out_dir / ("samples.png" if isinstance(inner, RBMSampler) else "recall.png")
    if isinstance(inner, RBMSampler):
        images = torch.as_tensor(model.predict(pd.DataFrame([{"num_samples": options.samples, "seed": seed}])))
        save_image_grid(images * 2 - 1, path, nrow=int(np.ceil(np.sqrt(len(images)))))
        return {"metrics": {"samples": len(images), "sample_pixel_mean": float(images.mean())},
                "files": [path], "summary": f"{len(images)} samples -> {path}"}
    probes = max(1, min(options.samples, 16))
    result = torch.as_tensor(model.predict(pd.DataFrame([{"num_probes": probes, "seed": seed}])))
    recalled = (result[:, 2] == result[:, 0]).all(dim=1).float().mean().item()
    files = []
    if inner.shape is not None:
        save_image_grid(result.transpose(0, 1).reshape(-1, *inner.shape), path, nrow=probes)
        files.append(path)
    return {"metrics": {"probes": probes, "recall_accuracy": recalled}, "files": files,
            "summary": f"{probes} corrupted patterns, {recalled:.0%} recalled exactly"
                       + (f" -> {path} (rows: stored, corrupted, recalled)" if files else "")}
