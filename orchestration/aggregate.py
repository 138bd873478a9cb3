"""Aggregate scores over seeds as rliable recommends (Agarwal et al. 2021): the interquartile mean
(IQM) with a percentile-bootstrap 95% confidence interval, per configuration."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from scipy.stats import trim_mean


def iqm(values) -> float:
    """Mean of the middle 50% of the values (25% trimmed from each end)."""
    return float(trim_mean(np.asarray(values, dtype=float), 0.25))


def bootstrap_ci(values, statistic=iqm, resamples: int = 2000, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` over resampled runs."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    stats = [statistic(values[rng.integers(0, len(values), len(values))]) for _ in range(resamples)]
    tail = (1 - level) / 2 * 100
    return float(np.percentile(stats, tail)), float(np.percentile(stats, 100 - tail))


def aggregate_over_seeds(rows, swept_keys: list[str], seed_key: str = "seed") -> list[dict]:
    """One entry per configuration (swept values other than the seed): runs, mean, IQM and its CI."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    keys = [k for k in swept_keys if k != seed_key]
    for row in rows:
        if row.final is not None:
            groups[tuple((k, row.config[k]) for k in keys)].append(row.final)
    out = []
    for config, scores in groups.items():
        low, high = bootstrap_ci(scores)
        out.append({"config": dict(config), "runs": len(scores), "mean": float(np.mean(scores)),
                    "iqm": iqm(scores), "ci_low": low, "ci_high": high})
    return out


def to_markdown(entries: list[dict], metric: str) -> str:
    if not entries:
        return ""
    keys = list(entries[0]["config"])
    lines = ["| " + " | ".join([*keys, "runs", f"mean {metric}", "IQM", "95% CI"]) + " |",
             "|" + "---|" * (len(keys) + 4)]
    for e in entries:
        lines.append("| " + " | ".join([*(str(e["config"][k]) for k in keys), str(e["runs"]), f"{e['mean']:.4g}",
                                        f"{e['iqm']:.4g}", f"[{e['ci_low']:.4g}, {e['ci_high']:.4g}]"]) + " |")
    return "\n".join(lines) + "\n"
