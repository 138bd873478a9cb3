"""Rows -> configurations: the replicates (seeds) of each configuration together, with the mean, the
IQM, a 95% confidence interval over seeds, and whether the configuration is statistically tied with
the best one.

Tied with the best: the 95% t interval of the per-seed differences to the best configuration, over
the seeds both finished, contains 0 (a paired comparison, so what a seed does to every configuration
cancels). With fewer than two shared seeds nothing can be said (`tied` is None). The best is the
configuration with the best mean; it is chosen from the same data, so the tied set errs on the side
of including configurations, which is the honest direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from orchestration.aggregate import Interval, iqm, paired_difference, t_interval
from orchestration.results.rows import RunRow, SweepView

MIN_SEEDS_FOR_IQM = 4


@dataclass
class Configuration:
    config_id: str
    config: dict
    runs: list[RunRow]
    tied: bool | None = None  # with the best configuration; None: cannot be judged
    is_best: bool = False

    @property
    def scores(self) -> dict[int, float]:
        """{seed: final metric} of the runs that finished their budget."""
        return {(r.seed or 0): r.final for r in self.runs if r.scored}

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def mean(self) -> float | None:
        return float(np.mean(list(self.scores.values()))) if self.scores else None

    @property
    def iqm(self) -> float | None:
        return float(iqm(list(self.scores.values()))) if self.n >= MIN_SEEDS_FOR_IQM else None

    @property
    def interval(self) -> Interval | None:
        """95% t interval of the mean over seeds (None below two seeds)."""
        return t_interval(list(self.scores.values()))

    @property
    def best_run(self) -> RunRow | None:
        """The run to use from this configuration: its best seed."""
        scored = [r for r in self.runs if r.scored]
        return None if not scored else scored[0]

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items()) or "(no swept parameters)"


def configurations(rows: list[RunRow], view: SweepView) -> list[Configuration]:
    """Configurations best first (by mean over finished seeds), those without a finished run last;
    the best is marked and every other is judged tied with it or not."""
    groups: dict[str, Configuration] = {}
    for row in rows:
        groups.setdefault(row.config_id, Configuration(row.config_id, row.config, [])).runs.append(row)
    sign = 1 if view.mode == "min" else -1
    for group in groups.values():
        group.runs.sort(key=lambda r: (not r.scored, sign * (r.final or 0.0), r.seed or 0))
    ordered = sorted(groups.values(), key=lambda g: (g.mean is None, sign * (g.mean or 0.0), g.label()))
    if ordered and ordered[0].mean is not None:
        best = ordered[0]
        best.is_best = True
        for group in ordered[1:]:
            if group.mean is not None:
                difference = paired_difference(group.scores, best.scores)
                group.tied = None if difference is None else difference.contains(0.0)
    return ordered


def tied_set(configs: list[Configuration]) -> list[Configuration]:
    """The best configuration and every configuration statistically tied with it."""
    return [c for c in configs if c.is_best or c.tied]


def single_seed(configs: list[Configuration]) -> bool:
    """True when no configuration has two finished seeds: the ranking carries no uncertainty."""
    return all(c.n < 2 for c in configs)
