"""Scores with their uncertainty, as small pure functions (the shape of rliable's metrics module):
the interquartile mean, confidence intervals, paired differences and Wilson intervals.

Which interval where:
- the mean over a few seeds: Student's t interval (`t_interval`), the standard small-sample choice;
  a bootstrap from 3 seeds has only 10 distinct resamples and is not worth its name;
- two configurations compared over the same seeds: the t interval of the per-seed differences
  (`paired_difference`), so what every configuration shares within a seed cancels;
- the mean of many episode returns: a BCa bootstrap (`interval`), which follows skewed returns;
  below MIN_VALUES_FOR_CI values it gives the range and says so;
- an accuracy on n test items: the Wilson score interval (`wilson_interval`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap, norm, t as student_t, trim_mean

MIN_VALUES_FOR_CI = 5
LEVEL = 0.95
CI = f"{LEVEL:.0%} CI"


def iqm(values, axis=None) -> float:
    """Mean of the middle 50% of the values (25% trimmed from each end)."""
    return trim_mean(np.asarray(values, dtype=float), 0.25, axis=axis)


def mean(values, axis=None) -> float:
    return np.mean(np.asarray(values, dtype=float), axis=axis)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    kind: str  # "95% CI" or "range"

    def contains(self, value: float) -> bool:
        return bool(self.low <= value <= self.high)

    def text(self, digits: int = 4) -> str:
        return f"[{self.low:.{digits}g}, {self.high:.{digits}g}] ({self.kind})"


def t_interval(values, level: float = LEVEL) -> Interval | None:
    """mean +- t_{(1+level)/2, n-1} s / sqrt(n); None for fewer than two values."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return None
    half = student_t.ppf((1 + level) / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    centre = float(values.mean())
    return Interval(centre - half, centre + half, f"{level:.0%} CI")


def paired_difference(first: dict, second: dict, level: float = LEVEL) -> Interval | None:
    """The t interval of mean(first[s] - second[s]) over the seeds s both have; None below two."""
    common = sorted(set(first) & set(second))
    return t_interval([first[s] - second[s] for s in common], level)


def wilson_interval(successes: float, n: int, level: float = LEVEL) -> Interval:
    """Wilson's score interval for a proportion successes / n (good at small n and near 0 or 1)."""
    z = norm.ppf((1 + level) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(centre - half, centre + half, f"{level:.0%} CI")


def interval(values, statistic=mean, seed: int = 0) -> Interval:
    """A 95% BCa bootstrap confidence interval of `statistic` (mean or iqm), or the range of the
    values when there are fewer than MIN_VALUES_FOR_CI of them."""
    values = np.asarray(values, dtype=float)
    if len(values) < MIN_VALUES_FOR_CI:
        return Interval(float(values.min()), float(values.max()), "range")
    if np.all(values == values[0]):  # no spread: the bootstrap distribution is a point
        return Interval(float(values[0]), float(values[0]), CI)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BCa may warn on near-degenerate data; the percentile fallback covers it
        result = bootstrap((values,), statistic, confidence_level=LEVEL, n_resamples=2000, method="BCa",
                           random_state=np.random.default_rng(seed))
        low, high = result.confidence_interval
        if not (np.isfinite(low) and np.isfinite(high)):
            result = bootstrap((values,), statistic, confidence_level=LEVEL, n_resamples=2000,
                               method="percentile", random_state=np.random.default_rng(seed))
            low, high = result.confidence_interval
    return Interval(float(low), float(high), CI)
