"""SimCLR, MoCo v1/v2, BYOL and SimSiam as modules with the same two calls:
`loss(x1, x2)` on two views, and `after_step(step, total_steps)` for momentum updates.
`encoder` is the representation that evaluation freezes.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from algorithms.contrastive.losses import PAIR_LOSSES, byol_loss, info_nce, negative_cosine, nt_xent
from algorithms.contrastive.momentum import KeyQueue, cosine_momentum, momentum_update
from algorithms.contrastive.networks import mlp

METHODS = ("simclr", "moco_v1", "moco_v2", "byol", "simsiam")


def _frozen_copy(module: nn.Module) -> nn.Module:
    target = copy.deepcopy(module)
    target.requires_grad_(False)
    return target


class SimCLR(nn.Module):
    def __init__(self, encoder: nn.Module, proj_dim: int, hidden: int, temperature: float, loss: str = "nt_xent",
                 margin: float = 0.5):
        super().__init__()
        self.encoder, self.temperature, self.loss_name, self.margin = encoder, temperature, loss, margin
        self.projector = mlp(encoder.out_dim, hidden, proj_dim)

    def loss(self, x1, x2):
        z1, z2 = self.projector(self.encoder(x1)), self.projector(self.encoder(x2))
        self.last_z = z1.detach()
        if self.loss_name == "nt_xent":
            return nt_xent(z1, z2, self.temperature)
        if self.loss_name == "n_pair":
            return PAIR_LOSSES["n_pair"](z1, z2)
        return PAIR_LOSSES[self.loss_name](z1, z2, self.margin)

    def after_step(self, step: int, total_steps: int) -> None:
        pass


def grouped_forward(module: nn.Module, x: torch.Tensor, groups: int, shuffle: bool = False) -> torch.Tensor:
    """`module` on `groups` sub-batches, each with BatchNorm statistics of its own, as MoCo's batch is
    split over GPUs. With `shuffle`, samples go to sub-batches at random and the output comes back
    in input order: MoCo's shuffling BN, which keeps a key out of its query's sub-batch statistics."""
    if groups <= 1:
        if shuffle:
            raise ValueError("shuffling BN needs at least 2 groups")
        return module(x)
    if len(x) % groups or len(x) < 2 * groups:
        raise ValueError(f"a batch of {len(x)} does not split into {groups} equal groups of at least 2")
    order = torch.randperm(len(x)).to(x.device) if shuffle else torch.arange(len(x), device=x.device)
    out = torch.cat([module(chunk) for chunk in x[order].chunk(groups)])
    return out[order.argsort()]


class MoCo(nn.Module):
    """He et al. 2020 (v1: linear head) and Chen et al. 2020 (v2: MLP head; stronger views are the
    augmentation's job). The key encoder follows the query encoder with momentum m. The encoders use
    BatchNorm, so queries run in `bn_groups` sub-batches and keys in shuffled ones (MoCo's
    shuffling BN on one device): otherwise batch statistics shared by a query and its key leak
    which key is the positive, and the loss falls without learning a representation."""

    def __init__(self, encoder: nn.Module, proj_dim: int, hidden: int, temperature: float, momentum: float,
                 queue_size: int, version: int = 2, generator: torch.Generator | None = None, bn_groups: int = 4):
        super().__init__()
        self.encoder, self.temperature, self.momentum, self.bn_groups = encoder, temperature, momentum, bn_groups
        head = mlp(encoder.out_dim, hidden, proj_dim) if version == 2 else nn.Linear(encoder.out_dim, proj_dim)
        self.query = nn.Sequential(encoder, head)
        self.key = _frozen_copy(self.query)
        self.queue = KeyQueue(queue_size, proj_dim, generator=generator)

    def loss(self, x1, x2):
        q = grouped_forward(self.query, x1, self.bn_groups)
        with torch.no_grad():
            k = F.normalize(grouped_forward(self.key, x2, self.bn_groups, shuffle=True), dim=1)
        self.pending_keys = k  # enqueued after the optimizer step: backward still needs this queue
        self.last_z = q.detach()
        return info_nce(q, k, self.queue.keys, self.temperature)

    def after_step(self, step: int, total_steps: int) -> None:
        """MoCo's Algorithm 1 order: update the key encoder, then enqueue this batch's keys."""
        momentum_update(self.key, self.query, self.momentum)
        self.queue.enqueue(self.pending_keys)


class BYOL(nn.Module):
    """Grill et al. 2020: an online network with a predictor regresses a target network's projection;
    the target is an EMA of the online network with decay tau (optionally rising to 1 by cosine)."""

    def __init__(self, encoder: nn.Module, proj_dim: int, hidden: int, tau: float, cosine_tau: bool = True):
        super().__init__()
        self.encoder, self.tau_base, self.cosine_tau = encoder, tau, cosine_tau
        self.online = nn.Sequential(encoder, mlp(encoder.out_dim, hidden, proj_dim))
        self.predictor = mlp(proj_dim, hidden, proj_dim)
        self.target = _frozen_copy(self.online)
        self.tau = tau

    def loss(self, x1, x2):
        z1, z2 = self.online(x1), self.online(x2)
        with torch.no_grad():
            t1, t2 = self.target(x1), self.target(x2)
        self.last_z = z1.detach()
        return byol_loss(self.predictor(z1), t2) + byol_loss(self.predictor(z2), t1)

    def after_step(self, step: int, total_steps: int) -> None:
        self.tau = cosine_momentum(self.tau_base, step, total_steps) if self.cosine_tau else self.tau_base
        momentum_update(self.target, self.online, self.tau)


class SimSiam(nn.Module):
    """Chen & He 2021: symmetric negative cosine with stop-gradient; no negatives, no momentum."""

    def __init__(self, encoder: nn.Module, proj_dim: int, hidden: int):
        super().__init__()
        self.encoder = encoder
        self.projector = mlp(encoder.out_dim, hidden, proj_dim, layers=3, last_bn=True)
        self.predictor = mlp(proj_dim, hidden // 2 or 1, proj_dim)

    def loss(self, x1, x2):
        z1, z2 = self.projector(self.encoder(x1)), self.projector(self.encoder(x2))
        p1, p2 = self.predictor(z1), self.predictor(z2)
        self.last_z = z1.detach()
        return 0.5 * (negative_cosine(p1, z2) + negative_cosine(p2, z1))

    def after_step(self, step: int, total_steps: int) -> None:
        pass


def build_method(config: dict, encoder: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    name, proj, hidden = config["method"], config["projection_dim"], config["hidden_dim"]
    if name == "simclr":
        return SimCLR(encoder, proj, hidden, config["temperature"], config["loss"], config["margin"])
    if name in ("moco_v1", "moco_v2"):
        return MoCo(encoder, proj, hidden, config["temperature"], config["momentum"], config["queue_size"],
                    version=1 if name == "moco_v1" else 2, generator=generator, bn_groups=config["bn_groups"])
    if name == "byol":
        return BYOL(encoder, proj, hidden, config["momentum"], config["cosine_momentum"])
    if name == "simsiam":
        return SimSiam(encoder, proj, hidden)
    raise ValueError(f"unknown method {name!r}; allowed: {', '.join(METHODS)}")
