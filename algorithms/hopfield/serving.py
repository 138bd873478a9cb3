"""A Hopfield network as an MLflow pyfunc, and `python -m orchestration.use` for it: `predict` takes DataFrame
rows {num_probes, seed?, flip_fraction?, update?}: that many stored patterns, each with a share of its units
flipped, run to a fixed point; it returns float32 (N, 3, units) in +-1: for each probe, its stored pattern,
the corrupted probe and the recalled state."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch

from algorithms.pyfunc import row_value, state_export

WEIGHTS = "model_state"


class HopfieldRecall(mlflow.pyfunc.PythonModel):
    """The stored patterns (the weights follow from them) and the recall settings."""

    def load_context(self, context) -> None:
        from algorithms.hopfield.network import Hopfield

        state = torch.load(context.artifacts[WEIGHTS], map_location="cpu", weights_only=False)
        self.config, self.shape = state["config"], state["shape"]
        self.network = Hopfield(state["patterns"], self.config["rule"], self.config["beta"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> np.ndarray:
        out = []
        for row in model_input.to_dict("records"):
            gen = torch.Generator().manual_seed(int(row_value(row, "seed", self.config["seed"])))
            targets, probes, run = self.network.probe(
                int(row["num_probes"]), float(row_value(row, "flip_fraction", self.config["flip_fraction"])),
                row_value(row, "update", self.config["update"]), 0.0, self.config["max_sweeps"], gen)
            out.append(torch.stack([targets, probes, torch.where(run["states"] >= 0, 1.0, -1.0)], dim=1))
        units = self.network.units
        return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, 3, units), np.float32)


def export(network, shape, config: dict, directory: Path):
    """The network's stored patterns and recall settings as a pyfunc ModelExport."""
    from mlflow.types import ColSpec

    state = {"patterns": network.patterns, "shape": shape,
             "config": {k: config[k] for k in ("rule", "beta", "update", "flip_fraction", "max_sweeps", "seed")}}
    inputs = [ColSpec("long", "num_probes"), ColSpec("long", "seed", required=False),
              ColSpec("double", "flip_fraction", required=False), ColSpec("string", "update", required=False)]
    return state_export(HopfieldRecall(), state, directory / "hopfield.pt", WEIGHTS, inputs,
                        pd.DataFrame({"num_probes": [2]}), (3, network.units),
                        "DataFrame rows {num_probes, seed?, flip_fraction?, update?} -> float32 (N, 3, units) in +-1: "
                        "stored pattern, corrupted probe, recalled state")


def use(model, run_params: dict, options, out_dir: Path) -> dict:
    """Recall from corrupted copies of the stored patterns; a picture (rows: stored, corrupted, recalled) where
    the patterns are images."""
    from algorithms.hopfield.network import recall_scores
    from algorithms.plots import save_image_grid

    seed = options.seed if options.seed is not None else 0
    inner = model.unwrap_python_model()
    path = out_dir / "recall.png"
    probes = max(1, min(options.samples, 16))
    result = torch.as_tensor(model.predict(pd.DataFrame([{"num_probes": probes, "seed": seed}])))
    recalled = recall_scores(result[:, 2], result[:, 0])["recall_accuracy"]
    files = []
    if inner.shape is not None:
        save_image_grid(result.transpose(0, 1).reshape(-1, *inner.shape), path, nrow=probes)
        files.append(path)
    return {"metrics": {"probes": probes, "recall_accuracy": recalled}, "files": files,
            "summary": f"{probes} corrupted patterns, {recalled:.0%} recalled exactly"
                       + (f" -> {path} (rows: stored, corrupted, recalled)" if files else "")}
