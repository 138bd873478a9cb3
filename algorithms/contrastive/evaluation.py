"""Frozen-feature evaluation: weighted kNN (Wu et al. 2018) and a logistic-regression probe."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from orchestration.aggregate import wilson_interval

HELD_OUT_FRACTION = 0.2  # digits: 359 of 1,797 images


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


def probe_predict(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor) -> torch.Tensor:
    """Multinomial logistic regression (scikit-learn, L-BFGS, L2 with C=1) on standardised frozen
    features, fitted to convergence; a probe that stops early would score the optimiser, not the
    representation."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x.double().numpy())
    probe = LogisticRegression(max_iter=2000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        probe.fit(scaler.transform(train_x.double().numpy()), train_y.numpy())
    return torch.as_tensor(probe.predict(scaler.transform(test_x.double().numpy())))


def knn_accuracy(train_x, train_y, test_x, test_y, num_classes: int, k: int = 20) -> float:
    return (knn_predict(train_x, train_y, test_x, num_classes, k) == test_y).float().mean().item()


def linear_probe_accuracy(train_x, train_y, test_x, test_y) -> float:
    return (probe_predict(train_x, train_y, test_x) == test_y).float().mean().item()


def held_out_split(data, seed: int):
    """(pretraining images, held-out images) of a data set for trial seed `seed`. The encoder pretrains
    on the first without labels; kNN and the probe fit on its labelled features and score only the
    second, images the encoder never saw. The split follows the seed, so seed s holds out the same
    images for every configuration (paired), and replicate seeds also cover which images are held out."""
    return data.split(HELD_OUT_FRACTION, seed=seed)


def evaluate_features(train_x, train_y, test_x, test_y, num_classes: int, k: int) -> dict:
    """kNN and probe accuracy on the held-out images, with 95% Wilson intervals.

    The kNN reference set and the probe are fitted on the pretraining images' features and labels only,
    then fixed, so the held-out predictions are independent trials of one classifier: their count of
    correct answers is binomial (a hypergeometric draw from a finite set, for which the binomial interval
    is conservative), and the Wilson interval applies as it is."""
    knn_correct = int((knn_predict(train_x, train_y, test_x, num_classes, k) == test_y).sum())
    probe_correct = int((probe_predict(train_x, train_y, test_x) == test_y).sum())
    n = len(test_y)
    out = {"eval_items": n}
    for name, correct in (("knn_acc", knn_correct), ("linear_acc", probe_correct)):
        ci = wilson_interval(correct, n)
        out.update({name: correct / n, f"{name}_ci_low": ci.low, f"{name}_ci_high": ci.high})
    return out
