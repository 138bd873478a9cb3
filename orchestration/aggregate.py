"""Scores over seeds or episodes with their uncertainty, as small pure functions (after rliable,
Agarwal et al. 2021): the interquartile mean (IQM), and a 95% bootstrap confidence interval from
`scipy.stats.bootstrap` where there are enough values for one.

Below MIN_VALUES_FOR_CI values a bootstrap interval is not worth its name (with two values it is
just [min, max]), so `interval` returns the range and says so: its `kind` is "range".
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from scipy.stats import bootstrap, trim_mean

MIN_VALUES_FOR_CI = 5
LEVEL = 0.95


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

    def text(self, digits: int = 4) -> str:
        return f"[{self.low:.{digits}g}, {self.high:.{digits}g}] ({self.kind})"


def interval(values, statistic=mean, seed: int = 0) -> Interval:
    """A 95% BCa bootstrap confidence interval of `statistic` (mean or iqm), or the range of the
    values when there are fewer than MIN_VALUES_FOR_CI of them."""
    values = np.asarray(values, dtype=float)
    if len(values) < MIN_VALUES_FOR_CI:
        return Interval(float(values.min()), float(values.max()), "range")
    if np.all(values == values[0]):  # no spread: the bootstrap distribution is a point
        return Interval(float(values[0]), float(values[0]), f"{LEVEL:.0%} CI")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BCa may warn on near-degenerate data; the percentile fallback covers it
        result = bootstrap((values,), statistic, confidence_level=LEVEL, n_resamples=2000, method="BCa",
                           random_state=np.random.default_rng(seed))
        low, high = result.confidence_interval
        if not (np.isfinite(low) and np.isfinite(high)):
            result = bootstrap((values,), statistic, confidence_level=LEVEL, n_resamples=2000,
                               method="percentile", random_state=np.random.default_rng(seed))
            low, high = result.confidence_interval
    return Interval(float(low), float(high), f"{LEVEL:.0%} CI")


def aggregate_over_seeds(rows, swept_keys: list[str], seed_key: str = "seed") -> list[dict]:
    """One entry per configuration (swept values other than the seed): runs, mean, IQM and its interval."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    keys = [k for k in swept_keys if k != seed_key]
    for row in rows:
        if row.final is not None:
            groups[tuple((k, row.config[k]) for k in keys)].append(row.final)
    out = []
    for config, scores in groups.items():
        spread = interval(scores, statistic=iqm)
        out.append({"config": dict(config), "runs": len(scores), "mean": float(np.mean(scores)),
                    "iqm": float(iqm(scores)), "low": spread.low, "high": spread.high, "interval": spread.kind})
    return out


def to_markdown(entries: list[dict], metric: str) -> str:
    if not entries:
        return ""
    keys = list(entries[0]["config"])
    lines = ["| " + " | ".join([*keys, "runs", f"mean {metric}", "IQM", "interval of the IQM"]) + " |",
             "|" + "---|" * (len(keys) + 4)]
    for e in entries:
        lines.append("| " + " | ".join([*(str(e["config"][k]) for k in keys), str(e["runs"]), f"{e['mean']:.4g}",
                                        f"{e['iqm']:.4g}",
                                        f"[{e['low']:.4g}, {e['high']:.4g}] ({e['interval']})"]) + " |")
    if any(e["interval"] == "range" for e in entries):
        lines.append("")
        lines.append(f"With fewer than {MIN_VALUES_FOR_CI} seeds a configuration shows the range of its scores, "
                     "not a confidence interval.")
    return "\n".join(lines) + "\n"
