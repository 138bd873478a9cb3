"""Frozen-feature evaluation: weighted kNN (Wu et al. 2018) and a logistic-regression probe."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def embed(encoder: nn.Module, images: torch.Tensor, device, batch_size: int = 1024) -> torch.Tensor:
    """Encoder features in eval mode (BatchNorm running statistics), on the CPU."""
    was_training = encoder.training
    encoder.eval()
    out = [encoder(images[i:i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)]
    encoder.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def knn_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                 num_classes: int, k: int = 20, temperature: float = 0.07) -> float:
    """Cosine kNN where each of the k neighbours votes with weight exp(similarity / temperature)."""
    train_x, test_x = F.normalize(train_x.float(), dim=1), F.normalize(test_x.float(), dim=1)
    k = min(k, len(train_x))
    correct = 0
    for start in range(0, len(test_x), 1024):
        sims, idx = (test_x[start:start + 1024] @ train_x.T).topk(k, dim=1)
        votes = torch.zeros(len(idx), num_classes).scatter_add_(1, train_y[idx], (sims / temperature).exp())
        correct += (votes.argmax(1) == test_y[start:start + 1024]).sum().item()
    return correct / len(test_x)


def linear_probe_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                          test_y: torch.Tensor, max_iter: int = 2000) -> float:
    """Multinomial logistic regression (scikit-learn, L-BFGS, L2 with C=1) on standardised frozen
    features, fitted to convergence; a probe that stops early would score the optimiser, not the
    representation."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        probe.fit(train_x.double().numpy(), train_y.numpy())
    return float(probe.score(test_x.double().numpy(), test_y.numpy()))


def evaluate_features(train_x, train_y, test_x, test_y, num_classes: int, k: int) -> dict:
    return {"knn_acc": knn_accuracy(train_x, train_y, test_x, test_y, num_classes, k),
            "linear_acc": linear_probe_accuracy(train_x, train_y, test_x, test_y)}
