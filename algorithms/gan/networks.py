"""DCGAN-style networks (Radford et al. 2016) for the image sizes the data sets have (8, 28, 32, ...).

The generator starts from a small square (4x4 for 8 and 32, 7x7 for 28) and doubles it with strided
transposed convolutions, with batch norm and ReLU; the discriminator mirrors it with strided convolutions
and leaky ReLU, without batch norm, so that the R1 penalty and the hinge loss see per-sample gradients.
The class-conditional variant feeds a label embedding to the generator and scores with a projection
discriminator (Miyato & Koyama 2018): the logit gains <embed(y), features>.
"""

from __future__ import annotations

import torch
from torch import nn


def upsamplings(side: int) -> tuple[int, int]:
    """(doublings, start side): halve while the side is even and the half is at least 4."""
    doublings = 0
    while side % 2 == 0 and side // 2 >= 4:
        side //= 2
        doublings += 1
    return doublings, side


class Generator(nn.Module):
    """z (N, latent_dim) [+ labels (N,)] -> images (N, C, H, W) in [-1, 1]."""

    def __init__(self, shape: tuple[int, int, int], latent_dim: int = 32, width: int = 32,
                 num_classes: int = 0):
        super().__init__()
        channels, side, _ = shape
        doublings, start = upsamplings(side)
        self.latent_dim, self.num_classes, self.shape = latent_dim, num_classes, tuple(shape)
        top = width * 2 ** doublings
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        self.project = nn.Sequential(nn.Linear(latent_dim, top * start * start), nn.BatchNorm1d(top * start * start),
                                     nn.ReLU())
        self.top, self.start = top, start
        blocks, c = [], top
        for _ in range(doublings):
            blocks += [nn.ConvTranspose2d(c, c // 2, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c // 2),
                       nn.ReLU()]
            c //= 2
        self.blocks = nn.Sequential(*blocks, nn.Conv2d(c, channels, 3, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is not None:
            z = z * self.embed(labels)  # multiplicative conditioning keeps z's scale
        h = self.project(z).view(len(z), self.top, self.start, self.start)
        return self.blocks(h)


class Discriminator(nn.Module):
    """images [+ labels] -> one logit per image (real > fake)."""

    def __init__(self, shape: tuple[int, int, int], width: int = 32, num_classes: int = 0):
        super().__init__()
        channels, side, _ = shape
        doublings, start = upsamplings(side)
        layers, c = [nn.Conv2d(channels, width, 3, padding=1), nn.LeakyReLU(0.2)], width
        for _ in range(doublings):
            layers += [nn.Conv2d(c, c * 2, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c *= 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        features = c * start * start
        self.logit = nn.Linear(features, 1)
        self.embed = nn.Embedding(num_classes, features) if num_classes else None

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.features(images)
        out = self.logit(h).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(labels) * h).sum(1)
        return out
