"""View generation with torchvision.transforms.v2, per data set and strength.

Each image gets its own random parameters (a v2 transform called on a whole batch would share
them, which makes every pair in the batch equally hard). Digits are never flipped; colour
jitter, grey-scale and blur only apply to RGB data. `strong` is MoCo v2's recipe (blur, more
jitter); `weak` is MoCo v1 / the default for grey digits.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2


def _to_unit(x: torch.Tensor) -> torch.Tensor:
    return (x + 1) / 2


def _from_unit(x: torch.Tensor) -> torch.Tensor:
    return x * 2 - 1


def build_augmentation(shape: tuple[int, int, int], strength: str = "weak") -> v2.Compose:
    """Transforms for one image (C, H, W) in [0, 1]."""
    channels, size = shape[0], shape[1]
    small = size <= 16
    crop_scale = (0.5, 1.0) if small else (0.2 if channels == 3 else 0.4, 1.0)
    steps = [v2.RandomResizedCrop(size, scale=crop_scale, ratio=(0.8, 1.25), antialias=True)]
    if channels == 1:
        steps.append(v2.RandomAffine(degrees=10 if strength == "weak" else 15, translate=(0.1, 0.1)))
    else:
        jitter = 0.4 if strength == "weak" else 0.8
        steps += [v2.RandomHorizontalFlip(),
                  v2.RandomApply([v2.ColorJitter(jitter, jitter, jitter, jitter / 4)], p=0.8),
                  v2.RandomGrayscale(p=0.2)]
        if strength == "strong":
            steps.append(v2.RandomApply([v2.GaussianBlur(3 if small else max(3, size // 10 * 2 + 1),
                                                         sigma=(0.1, 2.0))], p=0.5))
    if strength == "strong" and channels == 1:
        steps.append(v2.RandomErasing(p=0.25, scale=(0.02, 0.15), value=0))
    return v2.Compose(steps)


class ViewMaker:
    """Two independently augmented views of a batch in [-1, 1]."""

    def __init__(self, shape: tuple[int, int, int], strength: str = "weak"):
        self.transform = build_augmentation(shape, strength)  # draws from torch's global RNG (seeded per trial)

    def view(self, batch: torch.Tensor) -> torch.Tensor:
        unit = _to_unit(batch.cpu())
        return _from_unit(torch.stack([self.transform(image) for image in unit])).to(batch.device)

    def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.view(batch), self.view(batch)
