"""Rows -> configurations: the replicates (seeds) of each configuration together, with the mean, the
IQM, a 95% confidence interval over seeds, and whether the configuration is statistically tied with
the best one.

The best is chosen, and every other configuration compared with it, on the same seeds: those every
ranked configuration finished (`compared_on`), so no configuration is chosen on seeds the others did
not get. Tied with the best: the 95% t interval of the per-seed differences to the best on those seeds
contains 0 (a paired comparison, so what a seed does to every configuration cancels). With fewer than
two such seeds nothing can be said (`tied` is None). The best is chosen from the same data, so the tied
set errs on the side of including configurations, which is the honest direction.

A seed that ran its whole budget and ended on NaN or inf is a result, not a gap: its configuration is
marked diverged, is not ranked and cannot be best, however its other seeds did. Runs without a seed
are not replicates of each other: each counts on its own.
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
    def scores(self) -> dict:
        """{seed: final metric} of the runs that finished their budget with a finite value; a run without a
        seed is keyed by its run id, so it pairs with nothing."""
        return {r.replicate: r.final for r in self.runs if r.scored}

    @property
    def diverged_seeds(self) -> list:
        """Seeds (run ids where there is no seed) that ran their budget and ended on NaN or inf."""
        return [r.replicate for r in self.runs if r.diverged]

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def mean(self) -> float | None:
        """Over its finished seeds; None when it has none, or when a seed diverged (it is then not ranked)."""
        return float(np.mean(list(self.scores.values()))) if self.scores and not self.diverged_seeds else None

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
    """Configurations best first, those not ranked (no finished seed, or a diverged one) last; the best
    is marked and every other is judged tied with it or not, on `compared_on(...)` seeds."""
    groups: dict[str, Configuration] = {}
    for row in rows:
        groups.setdefault(row.config_id, Configuration(row.config_id, row.config, [])).runs.append(row)
    sign = 1 if view.mode == "min" else -1
    for group in groups.values():
        group.runs.sort(key=lambda r: (not r.scored, sign * (r.final or 0.0), _order(r.replicate)))
    ranked = [g for g in groups.values() if g.mean is not None]
    seeds = compared_on(ranked)
    key = (lambda g: float(np.mean([g.scores[s] for s in seeds]))) if seeds else (lambda g: g.mean)
    ordered = sorted(ranked, key=lambda g: (sign * key(g), g.label()))
    ordered += sorted((g for g in groups.values() if g.mean is None), key=lambda g: g.label())
    if ordered and ordered[0].mean is not None:
        best = ordered[0]
        best.is_best = True
        for group in ordered[1:]:
            if group.mean is not None:
                difference = paired_difference({s: group.scores[s] for s in seeds}, best.scores)
                group.tied = None if difference is None else difference.contains(0.0)
    return ordered


def compared_on(ranked: list[Configuration]) -> list:
    """The seeds every ranked configuration finished: the best is chosen and judged on these alone."""
    common = set.intersection(*(set(c.scores) for c in ranked)) if ranked else set()
    return sorted(common, key=_order)


def _order(replicate) -> tuple:
    """Seeds in numeric order, run ids (of runs without a seed) after them."""
    return type(replicate).__name__, replicate


def tied_set(configs: list[Configuration]) -> list[Configuration]:
    """The best configuration and every configuration statistically tied with it."""
    return [c for c in configs if c.is_best or c.tied]


def single_seed(configs: list[Configuration]) -> bool:
    """True when no configuration has two finished seeds: the ranking carries no uncertainty."""
    return all(c.n < 2 for c in configs)
