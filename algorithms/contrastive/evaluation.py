"""Frozen-feature evaluation: weighted kNN (Wu et al. 2018) and a linear probe."""

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
                          test_y: torch.Tensor, num_classes: int, steps: int = 300, lr: float = 0.05,
                          weight_decay: float = 1e-4, seed: int = 0) -> float:
    """Multinomial logistic regression on standardised frozen features (full-batch Adam)."""
    mean, std = train_x.mean(0), train_x.std(0).clamp(min=1e-6)
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    generator = torch.Generator().manual_seed(seed)
    probe = nn.Linear(train_x.shape[1], num_classes)
    with torch.no_grad():
        probe.weight.normal_(0, 0.01, generator=generator)
        probe.bias.zero_()
    optimizer = torch.optim.Adam(probe.parameters(), lr=lr, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(steps):
            loss = F.cross_entropy(probe(train_x), train_y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        return (probe(test_x).argmax(1) == test_y).float().mean().item()


def evaluate_features(train_x, train_y, test_x, test_y, num_classes: int, k: int) -> dict:
    return {"knn_acc": knn_accuracy(train_x, train_y, test_x, test_y, num_classes, k),
            "linear_acc": linear_probe_accuracy(train_x, train_y, test_x, test_y, num_classes)}
