"""Frozen-feature evaluation: weighted kNN (Wu et al. 2018) and a logistic-regression probe."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from orchestration.aggregate import wilson_interval


@torch.no_grad()
def embed(encoder: nn.Module, images: torch.Tensor, device, batch_size: int = 1024) -> torch.Tensor:
    """Encoder features in eval mode (BatchNorm running statistics), on the CPU."""
    was_training = encoder.training
    encoder.eval()
    out = [encoder(images[i:i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)]
    encoder.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def knn_predict(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, num_classes: int, k: int = 20,
                temperature: float = 0.07) -> torch.Tensor:
    """Cosine kNN where each of the k neighbours votes with weight exp(similarity / temperature)."""
    train_x, test_x = F.normalize(train_x.float(), dim=1), F.normalize(test_x.float(), dim=1)
    k = min(k, len(train_x))
    out = []
    for start in range(0, len(test_x), 1024):
        sims, idx = (test_x[start:start + 1024] @ train_x.T).topk(k, dim=1)
        votes = torch.zeros(len(idx), num_classes).scatter_add_(1, train_y[idx], (sims / temperature).exp())
        out.append(votes.argmax(1))
    return torch.cat(out)


def probe_predict(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, probe=None) -> torch.Tensor:
    """Multinomial logistic regression (scikit-learn, L-BFGS, L2 with C=1) on standardised frozen
    features, fitted to convergence; a probe that stops early would score the optimiser, not the
    representation. Passing the same `probe` to several folds warm-starts each fit from the last: the
    loss is strictly convex, so every fit still converges to its own optimum, in about half the
    iterations."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.preprocessing import StandardScaler

    probe = probe if probe is not None else new_probe()
    scaler = StandardScaler().fit(train_x.double().numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        probe.fit(scaler.transform(train_x.double().numpy()), train_y.numpy())
    return torch.as_tensor(probe.predict(scaler.transform(test_x.double().numpy())))


def new_probe(max_iter: int = 2000):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=max_iter, warm_start=True)


def knn_accuracy(train_x, train_y, test_x, test_y, num_classes: int, k: int = 20) -> float:
    return (knn_predict(train_x, train_y, test_x, num_classes, k) == test_y).float().mean().item()


def linear_probe_accuracy(train_x, train_y, test_x, test_y) -> float:
    return (probe_predict(train_x, train_y, test_x) == test_y).float().mean().item()


def evaluate_features(train_x, train_y, test_x, test_y, num_classes: int, k: int, folds: int = 5,
                      cross_validate_below: int = 1000) -> dict:
    """kNN and probe accuracy with 95% Wilson intervals.

    A test split of at least `cross_validate_below` images is scored as it is. A smaller one (digits:
    359) would leave a +-2-point interval, so then every image is scored once by a kNN / probe fitted
    on the other folds of a `folds`-fold split of train and test together (1,797 predictions on
    digits). The encoder itself never sees a label either way."""
    if len(test_y) >= cross_validate_below:
        parts = [(train_x, train_y, test_x, test_y)]
    else:
        x, y = torch.cat([train_x, test_x]), torch.cat([train_y, test_y])
        fold = torch.randperm(len(y), generator=torch.Generator().manual_seed(0)) % folds
        parts = [(x[fold != f], y[fold != f], x[fold == f], y[fold == f]) for f in range(folds)]
    knn_correct = sum(int((knn_predict(a, b, c, num_classes, k) == d).sum()) for a, b, c, d in parts)
    probe = new_probe()
    probe_correct = sum(int((probe_predict(a, b, c, probe) == d).sum()) for a, b, c, d in parts)
    n = sum(len(d) for *_, d in parts)
    out = {"eval_items": n}
    for name, correct in (("knn_acc", knn_correct), ("linear_acc", probe_correct)):
        ci = wilson_interval(correct, n)
        out.update({name: correct / n, f"{name}_ci_low": ci.low, f"{name}_ci_high": ci.high})
    return out
