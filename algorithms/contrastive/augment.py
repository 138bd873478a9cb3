"""Two augmented views of a batch, made on the batch's own device in a few batched tensor operations.

The recipe is torchvision's (SimCLR / MoCo), with its parameter ranges, but every image draws its own
parameters and the whole batch is transformed at once: one `grid_sample` does each image's random resized
crop, rotation, translation and flip together, and colour jitter, grey-scale, blur and erasing are masked
batch operations. So a GPU trial never sends its images back to the host, and a CPU trial does not loop
over images in Python. Digits are never flipped; colour jitter, grey-scale and blur only apply to RGB data.
`strong` is MoCo v2's recipe (blur, more jitter); `weak` is MoCo v1 / the default for grey digits.

The random parameters are drawn on the CPU from torch's global generator (seeded per trial and saved in
its checkpoints), a few numbers per image, so a trial's views do not depend on the device it runs on.
Where torchvision would retry a crop that does not fit the image, the crop is clipped to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

GREY_WEIGHTS = (0.2989, 0.587, 0.114)  # torchvision rgb_to_grayscale


@dataclass(frozen=True)
class Recipe:
    crop_scale: tuple[float, float]
    crop_ratio: tuple[float, float] = (0.8, 1.25)
    degrees: float = 0.0
    translate: float = 0.0  # fraction of the side
    flip: bool = False
    jitter: float = 0.0  # brightness, contrast, saturation; hue jitter / 4; with probability 0.8
    grey_p: float = 0.0
    blur_p: float = 0.0
    blur_kernel: int = 3
    erase_p: float = 0.0


def build_recipe(shape: tuple[int, int, int], strength: str = "weak") -> Recipe:
    """The augmentation for images of `shape` (C, H, W)."""
    channels, size = shape[0], shape[1]
    small = size <= 16
    crop_scale = (0.5, 1.0) if small else (0.2 if channels == 3 else 0.4, 1.0)
    if channels == 1:
        return Recipe(crop_scale, degrees=10 if strength == "weak" else 15, translate=0.1,
                      erase_p=0.25 if strength == "strong" else 0.0)
    return Recipe(crop_scale, flip=True, jitter=0.4 if strength == "weak" else 0.8, grey_p=0.2,
                  blur_p=0.5 if strength == "strong" else 0.0,
                  blur_kernel=3 if small else max(3, size // 10 * 2 + 1))


def _uniform(n: int, low: float, high: float) -> torch.Tensor:
    return torch.rand(n) * (high - low) + low


def sample_geometry(n: int, recipe: Recipe) -> torch.Tensor:
    """Each image's random resized crop, rotation, translation and flip, as `geometry` matrices."""
    area = _uniform(n, *recipe.crop_scale)
    log_ratio = _uniform(n, math.log(recipe.crop_ratio[0]), math.log(recipe.crop_ratio[1]))
    width = torch.sqrt(area * log_ratio.exp()).clamp(max=1.0)  # fractions of the side
    height = torch.sqrt(area / log_ratio.exp()).clamp(max=1.0)
    centre = (torch.rand(n, 2) * 2 - 1) * (1 - torch.stack([width, height], -1))
    angle = _uniform(n, -recipe.degrees, recipe.degrees)
    shift = _uniform(2 * n, -recipe.translate, recipe.translate).view(n, 2)
    flip = torch.rand(n) < 0.5 if recipe.flip else torch.zeros(n, dtype=torch.bool)
    return geometry(width, height, centre, angle, shift, flip)


def geometry(width, height, centre, angle, shift, flip) -> torch.Tensor:
    """(n, 2, 3) matrices from output to input coordinates (`affine_grid`'s [-1, 1] convention): the crop
    (`width`, `height` as fractions of the side, `centre` in [-1, 1]) resized to the whole image, then
    rotated by `angle` degrees counter-clockwise about the centre and shifted by `shift` (fractions of the
    side, right and down), as torchvision's RandomAffine, then mirrored left-right where `flip`."""
    angle = angle * math.pi / 180
    cos, sin = torch.cos(angle), torch.sin(angle)
    # y points down: a counter-clockwise turn on screen takes (x, y) to (x cos + y sin, -x sin + y cos); its inverse
    inverse_rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    linear = torch.diag_embed(torch.stack([width, height], -1)) @ inverse_rotation
    offset = centre - (linear @ (2 * shift).unsqueeze(-1)).squeeze(-1)
    mirror = torch.stack([torch.where(flip, -1.0, 1.0), torch.ones(len(flip))], -1)
    return torch.cat([linear * mirror.unsqueeze(-2), offset.unsqueeze(-1)], -1)


def warp(images: torch.Tensor, theta: torch.Tensor, padding: str = "zeros") -> torch.Tensor:
    """Each image resampled through its own affine matrix (bilinear). Outside the image is black
    ("zeros", as torchvision's RandomAffine fills) or the nearest edge pixel ("border", as a crop sees it)."""
    grid = F.affine_grid(theta.to(images.device, images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode=padding, align_corners=False)


def _grey(x: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor(GREY_WEIGHTS, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


def _rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    maxc, minc = x.max(1).values, x.min(1).values
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue = torch.where(maxc == r, (g - b) / safe, torch.where(maxc == g, (b - r) / safe + 2, (r - g) / safe + 4))
    hue = torch.where(delta > 0, (hue / 6) % 1.0, torch.zeros_like(hue))
    saturation = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)),
                             torch.zeros_like(maxc))
    return torch.stack([hue, saturation, maxc], 1)


def _hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    hue, saturation, value = x.unbind(1)
    k = (torch.tensor([5.0, 3.0, 1.0], device=x.device, dtype=x.dtype).view(1, 3, 1, 1) + hue.unsqueeze(1) * 6) % 6
    return value.unsqueeze(1) - value.unsqueeze(1) * saturation.unsqueeze(1) * \
        torch.clamp(torch.minimum(k, 4 - k), 0, 1)


def colour_jitter(x: torch.Tensor, strength: float, apply: torch.Tensor) -> torch.Tensor:
    """torchvision's ColorJitter(s, s, s, s / 4) on the images where `apply`, each with its own factors;
    the order of the four adjustments is drawn once per batch (torchvision draws it per call)."""
    n = len(x)
    factors = {name: _uniform(n, max(0.0, 1 - strength), 1 + strength).to(x.device).view(n, 1, 1, 1)
               for name in ("brightness", "contrast", "saturation")}
    hue_shift = _uniform(n, -strength / 4, strength / 4).to(x.device).view(n, 1, 1)
    out = x
    for step in torch.randperm(4).tolist():
        if step == 0:
            out = (out * factors["brightness"]).clamp(0, 1)
        elif step == 1:
            mean = _grey(out).mean((1, 2, 3), keepdim=True)
            out = (factors["contrast"] * out + (1 - factors["contrast"]) * mean).clamp(0, 1)
        elif step == 2:
            out = (factors["saturation"] * out + (1 - factors["saturation"]) * _grey(out)).clamp(0, 1)
        else:
            hsv = _rgb_to_hsv(out)
            hsv = torch.stack([(hsv[:, 0] + hue_shift) % 1.0, hsv[:, 1], hsv[:, 2]], 1)
            out = _hsv_to_rgb(hsv)
    return torch.where(apply.to(x.device).view(n, 1, 1, 1), out, x)


def gaussian_blur(x: torch.Tensor, kernel: int, apply: torch.Tensor) -> torch.Tensor:
    """A Gaussian blur with sigma drawn from [0.1, 2] per image (reflect padding), where `apply`."""
    n, c, h, w = x.shape
    sigma = _uniform(n, 0.1, 2.0).to(x.device)
    offsets = torch.arange(kernel, device=x.device, dtype=x.dtype) - (kernel - 1) / 2
    weights = torch.exp(-offsets.view(1, -1) ** 2 / (2 * sigma.view(-1, 1).to(x.dtype) ** 2))
    weights = (weights / weights.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (n * c, kernel)
    flat = F.pad(x.reshape(1, n * c, h, w), [kernel // 2] * 4, mode="reflect")
    flat = F.conv2d(flat, weights.view(n * c, 1, 1, kernel), groups=n * c)
    flat = F.conv2d(flat, weights.view(n * c, 1, kernel, 1), groups=n * c)
    return torch.where(apply.to(x.device).view(n, 1, 1, 1), flat.view(n, c, h, w), x)


def random_erasing(x: torch.Tensor, apply: torch.Tensor) -> torch.Tensor:
    """torchvision's RandomErasing(scale=(0.02, 0.15), ratio=(0.3, 3.3), value=0) where `apply`."""
    n, _, h, w = x.shape
    area = _uniform(n, 0.02, 0.15)
    log_ratio = _uniform(n, math.log(0.3), math.log(3.3))
    eh, ew = torch.sqrt(area * log_ratio.exp()).clamp(max=1.0), torch.sqrt(area / log_ratio.exp()).clamp(max=1.0)
    top, left = torch.rand(n) * (1 - eh), torch.rand(n) * (1 - ew)
    rows = (torch.arange(h, device=x.device) + 0.5) / h
    cols = (torch.arange(w, device=x.device) + 0.5) / w
    bounds = torch.stack([top, top + eh, left, left + ew], -1).to(x.device)
    inside = ((rows.view(1, h, 1) >= bounds[:, 0, None, None]) & (rows.view(1, h, 1) < bounds[:, 1, None, None]) &
              (cols.view(1, 1, w) >= bounds[:, 2, None, None]) & (cols.view(1, 1, w) < bounds[:, 3, None, None]))
    return x.masked_fill((inside & apply.to(x.device).view(n, 1, 1)).unsqueeze(1), 0.0)


class ViewMaker:
    """Two independently augmented views of a batch in [-1, 1], on the batch's device."""

    def __init__(self, shape: tuple[int, int, int], strength: str = "weak"):
        self.recipe = build_recipe(shape, strength)

    def view(self, batch: torch.Tensor) -> torch.Tensor:
        recipe, n = self.recipe, len(batch)
        moves = recipe.degrees or recipe.translate  # rotated or shifted images show black where they uncover
        x = warp((batch + 1) / 2, sample_geometry(n, recipe), "zeros" if moves else "border")
        if recipe.jitter:
            x = colour_jitter(x, recipe.jitter, torch.rand(n) < 0.8)
        if recipe.grey_p:
            x = torch.where((torch.rand(n) < recipe.grey_p).to(x.device).view(n, 1, 1, 1),
                            _grey(x).expand_as(x), x)
        if recipe.blur_p:
            x = gaussian_blur(x, recipe.blur_kernel, torch.rand(n) < recipe.blur_p)
        if recipe.erase_p:
            x = random_erasing(x, torch.rand(n) < recipe.erase_p)
        return x * 2 - 1

    def __call__(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.view(batch), self.view(batch)
