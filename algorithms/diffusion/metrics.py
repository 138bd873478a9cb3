"""Sample quality without downloaded weights: a Frechet distance in the feature space of a
small classifier trained by the project on the same data set (FID's recipe, own features).

The classifier and the real data's feature statistics are cached on disk, keyed by the
data set, so every trial of a sweep scores against the same reference.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import linalg
from torch import nn
import torch.nn.functional as F

from algorithms.data import ImageData

FEATURE_DIM = 64
CACHE_VERSION = 1


class FeatureClassifier(nn.Module):
    """Three conv layers and global pooling: 64-d features, then a linear classifier."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(64, FEATURE_DIM, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def forward(self, x):
        return self.head(self.features(x))


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), as in Heusel et al. 2017."""
    diff = mu1 - mu2
    with warnings.catch_warnings():  # singular products are handled just below
        warnings.simplefilter("ignore")  # LinAlgWarning, and newer SciPy's deprecation of `disp`
        # without `disp`: SciPy >= 1.18 removed it (and returns only the root); older ones return the root too
        covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def frechet_distance_eig(mu1, sigma1, mu2, sigma2) -> float:
    """The same distance with Tr((S1 S2)^(1/2)) as the sum of square roots of the eigenvalues of S1 S2
    (real and non-negative: S1 S2 is similar to S1^(1/2) S2 S1^(1/2)); several times faster than sqrtm,
    which the bootstrap below calls hundreds of times."""
    diff = mu1 - mu2
    eigenvalues = np.linalg.eigvals(sigma1 @ sigma2).real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.sqrt(np.clip(eigenvalues, 0, None)).sum())


def frechet_interval(generated: np.ndarray, real: np.ndarray, point: float, resamples: int = 200,
                     seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """The evaluation noise of a Frechet distance: point +- z * (bootstrap standard error), with both
    feature sets resampled. The bootstrap distribution itself sits well above the point estimate
    (resampling adds its own finite-sample bias, about +3 on digits), so its spread is used and
    its location is not; the bound is clipped at 0."""
    from scipy.stats import norm

    rng = np.random.default_rng(seed)
    values = [frechet_distance_eig(*feature_stats(generated[rng.integers(0, len(generated), len(generated))]),
                                   *feature_stats(real[rng.integers(0, len(real), len(real))]))
              for _ in range(resamples)]
    half = norm.ppf((1 + level) / 2) * float(np.std(values, ddof=1))
    return max(0.0, point - half), point + half


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = features.astype(np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


@dataclass
class FrechetScorer:
    """Scores images (N, C, H, W) in [-1, 1] against the real data's feature statistics."""

    classifier: FeatureClassifier
    mu: np.ndarray
    sigma: np.ndarray
    test_accuracy: float

    @torch.no_grad()
    def features(self, images: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
        self.classifier.eval()
        out = [self.classifier.features(images[i:i + batch_size].float().cpu().clamp(-1, 1))
               for i in range(0, len(images), batch_size)]
        return torch.cat(out).numpy()

    real_features: np.ndarray | None = None  # computed on first use by score_with_interval

    def score(self, images: torch.Tensor) -> float:
        mu, sigma = feature_stats(self.features(images))
        return frechet_distance(mu, sigma, self.mu, self.sigma)

    def score_with_interval(self, images: torch.Tensor, real_images: torch.Tensor, seed: int = 0) -> dict:
        """{"fid", "fid_ci_low", "fid_ci_high"}: the distance and its 95% evaluation-noise interval."""
        generated = self.features(images)
        if self.real_features is None:
            self.real_features = self.features(real_images)
        fid = frechet_distance(*feature_stats(generated), self.mu, self.sigma)
        low, high = frechet_interval(generated, self.real_features, fid, seed=seed)
        return {"fid": fid, "fid_ci_low": low, "fid_ci_high": high}


def train_classifier(data: ImageData, epochs: int = 15, seed: int = 0) -> tuple[FeatureClassifier, float]:
    """Train on a fixed 80% split; return the model and its accuracy on the other 20%."""
    torch.manual_seed(seed)
    train, test = data.split(0.2, seed=seed)
    model = FeatureClassifier(data.shape[0], data.num_classes)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(train.labels), generator=gen).split(128):
            loss = F.cross_entropy(model(train.images[idx]), train.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(test.images).argmax(1) == test.labels).float().mean().item()
    return model, accuracy


def _cache_key(data: ImageData) -> str:
    digest = hashlib.sha1(data.images[:64].numpy().tobytes()).hexdigest()[:10]
    c, h, w = data.shape
    return f"fid_{data.name}_{c}x{h}x{w}_{len(data.labels)}_{digest}_v{CACHE_VERSION}.pt"


def load_scorer(data: ImageData, cache_dir: str | Path) -> FrechetScorer:
    """The cached scorer for this data set, trained and written atomically on first use."""
    cache_dir = Path(cache_dir).expanduser()
    path = cache_dir / _cache_key(data)
    if path.exists():
        state = torch.load(path, weights_only=False)
        model = FeatureClassifier(data.shape[0], data.num_classes)
        model.load_state_dict(state["classifier"])
        return FrechetScorer(model.eval(), state["mu"], state["sigma"], state["test_accuracy"])

    model, accuracy = train_classifier(data)
    scorer = FrechetScorer(model, np.zeros(1), np.zeros(1), accuracy)
    scorer.mu, scorer.sigma = feature_stats(scorer.features(data.images))
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
    os.close(fd)
    torch.save({"classifier": model.state_dict(), "mu": scorer.mu, "sigma": scorer.sigma,
                "test_accuracy": accuracy}, tmp)
    os.replace(tmp, path)  # concurrent trials may race; the last complete file wins
    return scorer
