"""Contrastive and self-distillation losses, vectorised; tests compare them with direct loops.

All similarity-based losses use cosine similarity (L2-normalised embeddings).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent over 2N views: each view's positive is its pair, the other 2N-2 are negatives."""
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)


def info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float) -> torch.Tensor:
    """MoCo's InfoNCE: query q against its key k (positive) and K queued keys (negatives).

    q, k: (N, D); queue: (K, D), already normalised, treated as constants.
    """
    q = F.normalize(q, dim=1)
    k = F.normalize(k, dim=1).detach()
    positive = (q * k).sum(dim=1, keepdim=True)
    negatives = q @ queue.detach().T
    logits = torch.cat([positive, negatives], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """SimSiam's D(p, z) = -cos(p, stopgrad(z)), averaged over the batch."""
    return -F.cosine_similarity(p, z.detach(), dim=1).mean()


def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """BYOL's ||p/|p| - z/|z|||^2 = 2 - 2 cos(p, z), with z from the target network (no gradient)."""
    return (2 - 2 * F.cosine_similarity(p, z.detach(), dim=1)).mean()


def contrastive_pair_loss(z1: torch.Tensor, z2: torch.Tensor, margin: float = 0.5) -> torch.Tensor:
    """Hadsell et al. 2006 on cosine distance: pull each pair together, push mismatched pairs
    (z1[i], z2[j != i]) beyond the margin."""
    z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    distance = 1 - z1 @ z2.T
    n = len(z1)
    eye = torch.eye(n, dtype=torch.bool, device=z1.device)
    positive = distance[eye].pow(2).mean()
    negative = F.relu(margin - distance[~eye]).pow(2).mean() if n > 1 else distance.new_zeros(())
    return positive + negative


def triplet_loss(z1: torch.Tensor, z2: torch.Tensor, margin: float = 0.5) -> torch.Tensor:
    """Anchor z1[i], positive z2[i], hardest negative z2[j != i] (batch-hard, cosine distance)."""
    z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    distance = 1 - z1 @ z2.T
    positive = distance.diagonal()
    eye = torch.eye(len(z1), dtype=torch.bool, device=z1.device)
    hardest_negative = distance.masked_fill(eye, float("inf")).min(dim=1).values
    return F.relu(positive - hardest_negative + margin).mean()


def n_pair_loss(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Sohn 2016: softmax over z2 for each anchor z1[i] with its pair as the target (unnormalised,
    dot product, with the paper's L2 penalty on the embeddings)."""
    logits = z1 @ z2.T
    targets = torch.arange(len(z1), device=z1.device)
    return F.cross_entropy(logits, targets) + 0.002 * (z1.pow(2).sum(1).mean() + z2.pow(2).sum(1).mean())


PAIR_LOSSES = {"nt_xent": None, "contrastive": contrastive_pair_loss, "triplet": triplet_loss, "n_pair": n_pair_loss}
