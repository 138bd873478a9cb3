"""Mode coverage: which classes a generator's samples fall in, by the FID scorer's own classifier.

A collapsed generator can score a tolerable FID on one mode; the class histogram shows the collapse.
- `mode_coverage`: the share of the data's classes that get at least MIN_SHARE of the samples (1%, a tenth
  of a class's share on ten balanced classes, so a stray misclassification does not count as a mode);
- `class_kl`: KL(samples' class histogram || data's class histogram) in nats; 0 when the proportions match,
  log(10) = 2.3 for one class of ten balanced ones.
Both come with a 95% bootstrap interval over the samples (the evaluation noise, not the seed-to-seed spread).
"""

from __future__ import annotations

import numpy as np
import torch

MIN_SHARE = 0.01


def class_histogram(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.bincount(labels, minlength=num_classes) / max(len(labels), 1)


def coverage_and_kl(predicted: np.ndarray, data_share: np.ndarray) -> tuple[float, float]:
    share = class_histogram(predicted, len(data_share))
    covered = float((share >= MIN_SHARE).sum() / len(data_share))
    present = share > 0
    kl = float((share[present] * np.log(share[present] / data_share[present])).sum())
    return covered, kl


def mode_scores(predicted: np.ndarray, data_labels: np.ndarray, num_classes: int, seed: int = 0,
                resamples: int = 200) -> dict:
    """{"mode_coverage", "class_kl"} and their "_ci_low" / "_ci_high" (percentile bootstrap, 95%)."""
    data_share = class_histogram(np.asarray(data_labels), num_classes)
    predicted = np.asarray(predicted)
    coverage, kl = coverage_and_kl(predicted, data_share)
    rng = np.random.default_rng(seed)
    draws = np.array([coverage_and_kl(predicted[rng.integers(0, len(predicted), len(predicted))], data_share)
                      for _ in range(resamples)])
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    return {"mode_coverage": coverage, "mode_coverage_ci_low": float(low[0]), "mode_coverage_ci_high": float(high[0]),
            "class_kl": kl, "class_kl_ci_low": float(low[1]), "class_kl_ci_high": float(high[1])}


@torch.no_grad()
def predict_classes(classifier, images: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
    """The classifier's class for each image (N, C, H, W) in [-1, 1]."""
    classifier.eval()
    out = [classifier(images[i:i + batch_size].float().cpu().clamp(-1, 1)).argmax(1)
           for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy()
