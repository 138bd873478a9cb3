"""A trained encoder as an MLflow PyTorch model, and `python -m orchestration.use` for it.

The model is the encoder alone (no projection head), in eval mode: `predict` takes float32 images
(N, C, H, W) scaled to [-1, 1], as `algorithms.data` loads them, and returns the (N, D) features
that kNN and the linear probe score. MLflow stores it in its default format for PyTorch, a
torch.export program, so loading runs no pickled code and needs no class of ours;
`mlflow.pytorch.load_model` gives back an nn.Module (a graph module) to build on.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

DESCRIPTION = "float32 images (N, C, H, W) in [-1, 1] -> float32 features (N, D) of the frozen encoder"


def export(encoder: torch.nn.Module, example_images: torch.Tensor):
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    from orchestration.family import ModelExport

    frozen = copy.deepcopy(encoder).cpu().eval().requires_grad_(False)
    example = example_images[:2].float().cpu()
    with torch.no_grad():
        dim = frozen(example).shape[1]
    signature = ModelSignature(inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *example.shape[1:]))]),
                               outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, dim))]))
    return ModelExport("pytorch", frozen, signature, example.numpy(), DESCRIPTION)


def embed_with(model, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    parts = [np.asarray(model.predict(images[i:i + batch_size].numpy())) for i in range(0, len(images), batch_size)]
    return torch.as_tensor(np.concatenate(parts))


def use(model, run_params: dict, options, out_dir: Path) -> dict:
    """kNN and linear-probe accuracy (95% Wilson intervals) of the model's features on a data set, scored
    as the sweep scored it, and a t-SNE of the held-out features."""
    from algorithms.contrastive.evaluation import evaluate_features, held_out_split
    from algorithms.data import load_dataset
    from algorithms.plots import embedding_plot

    dataset = options.dataset or run_params.get("dataset", "digits")
    folder = options.folder or run_params.get("folder")
    folder = None if folder in (None, "None") else folder  # MLflow params are text
    data = load_dataset(dataset, data_dir=run_params.get("data_dir", "data"), folder=folder,
                        image_size=int(run_params.get("image_size", 32)), channels=int(run_params.get("channels", 3)))
    train, test = held_out_split(data, int(run_params.get("seed", 0)))  # the images the run's encoder never saw
    train_x, test_x = embed_with(model, train.images), embed_with(model, test.images)
    scores = evaluate_features(train_x, train.labels, test_x, test.labels, data.num_classes,
                               int(run_params.get("knn_k", 20)))
    path = out_dir / "embedding_tsne.png"
    embedding_plot(test_x.numpy(), test.labels.numpy(), path, title=f"t-SNE of {dataset} test features",
                   seed=options.seed or 0)
    metrics = {f"eval/{k}": v for k, v in scores.items()}
    summary = (f"{dataset}: kNN accuracy {scores['knn_acc']:.4f} [{scores['knn_acc_ci_low']:.4f}, "
               f"{scores['knn_acc_ci_high']:.4f}], linear probe {scores['linear_acc']:.4f} "
               f"[{scores['linear_acc_ci_low']:.4f}, {scores['linear_acc_ci_high']:.4f}] "
               f"(95% Wilson intervals over {scores['eval_items']} images); t-SNE -> {path}")
    return {"metrics": metrics, "files": [path], "summary": summary}
