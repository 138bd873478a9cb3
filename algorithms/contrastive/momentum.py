"""Momentum (EMA) target networks and MoCo's FIFO queue of keys."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def momentum_update(target: nn.Module, online: nn.Module, m: float) -> None:
    """theta_k <- m theta_k + (1 - m) theta_q: m=0 copies the online weights, m=1 freezes the target."""
    for t, o in zip(target.parameters(), online.parameters()):
        t.mul_(m).add_(o.detach(), alpha=1.0 - m)
    for t, o in zip(target.buffers(), online.buffers()):
        t.copy_(o)


def cosine_momentum(base: float, step: int, total_steps: int) -> float:
    """BYOL's schedule: tau rises from base to 1 as 1 - (1 - base) (cos(pi k / K) + 1) / 2."""
    if total_steps <= 0:
        return base
    progress = min(step, total_steps) / total_steps
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1) / 2


class KeyQueue(nn.Module):
    """A FIFO queue of K normalised keys: the oldest keys are overwritten first."""

    def __init__(self, size: int, dim: int, generator: torch.Generator | None = None):
        super().__init__()
        self.size = size
        self.register_buffer("keys", F.normalize(torch.randn(size, dim, generator=generator), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Write the batch at the pointer (wrapping around), replacing the oldest keys."""
        n = len(keys)
        if n > self.size:
            raise ValueError(f"a batch of {n} keys does not fit a queue of {self.size}")
        idx = (self.pointer + torch.arange(n, device=keys.device)) % self.size
        self.keys[idx] = F.normalize(keys.detach(), dim=1)
        self.pointer.copy_((self.pointer + n) % self.size)

    def ordered(self) -> torch.Tensor:
        """Keys from oldest to newest (for tests and inspection)."""
        p = int(self.pointer)
        return torch.cat([self.keys[p:], self.keys[:p]])
