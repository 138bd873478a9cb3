"""GAN objectives on the discriminator's logits d = D(x) (D's probability of "real" is sigmoid(d)).

- minimax (Goodfellow et al. 2014): D maximises log D(x) + log(1 - D(G(z))); G minimises log(1 - D(G(z))),
  whose gradient vanishes when D rejects the fakes confidently (it saturates);
- non_saturating: the same D; G maximises log D(G(z)) instead, strong gradients exactly there;
- hinge (Lim & Ye 2017; Miyato et al. 2018): D minimises relu(1 - d_real) + relu(1 + d_fake); G maximises d_fake.

With log sigmoid(d) = -softplus(-d) and log(1 - sigmoid(d)) = -softplus(d) every loss is stable in d.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("minimax", "non_saturating", "hinge")


def discriminator_loss(kind: str, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """What D minimises, from its logits on real and on generated images."""
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def generator_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """What G minimises, from D's logits on its images."""
    if kind == "minimax":
        return -F.softplus(fake).mean()  # log(1 - sigmoid(d))
    if kind == "non_saturating":
        return F.softplus(-fake).mean()  # -log sigmoid(d)
    if kind == "hinge":
        return -fake.mean()
    raise ValueError(f"unknown GAN loss {kind!r}; allowed: {', '.join(LOSSES)}")


def r1_penalty(discriminator, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """E ||grad_x D(x)||^2 on real images (Mescheder et al. 2018); the trainer scales it by gamma / 2."""
    real = real.detach().requires_grad_(True)
    logits = discriminator(real, labels)
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()
