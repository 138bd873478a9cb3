"""Rows -> configurations: the replicates (seeds) of each configuration together, with the mean, the
IQM, a 95% confidence interval over seeds, and whether the configuration is statistically tied with
the best one.

Tied with the best is `orchestration.verdict`'s rule, the same one a race eliminates with:
- a sweep that does not race makes one look. The best is chosen, and every other configuration compared
  with it, on the same seeds: those every ranked configuration finished (`compared_on`), so no
  configuration is chosen on seeds the others did not get. With fewer than two such seeds nothing can be
  said (`tied` is None);
- a race is replayed over its recorded seeds, look by look: the configurations still in it at its last
  look are the tied set, exactly the race's survivors; the others are not tied, and say at which round
  and why they left.

A seed that ran its whole budget and ended on NaN or inf is a result, not a gap: its configuration is
marked diverged, is not ranked and cannot be best, however its other seeds did (a race eliminates it at
the look that needs that seed). Runs without a seed are not replicates of each other: each counts on its
own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from orchestration.aggregate import Interval, iqm, t_interval
from orchestration.results.rows import RunRow, SweepView
from orchestration.verdict import Comparison, Race, compare, run_race

MIN_SEEDS_FOR_IQM = 4


@dataclass
class Configuration:
    config_id: str
    config: dict
    runs: list[RunRow]
    tied: bool | None = None  # with the best configuration; None: cannot be judged
    is_best: bool = False
    comparison: Comparison | None = None  # against the best, at the (last) look that judged it
    out: tuple[int, str] | None = None  # raced: (round, why) it was eliminated

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
    is marked and every other is judged tied with it or not (`verdict`)."""
    groups: dict[str, Configuration] = {}
    for row in rows:
        groups.setdefault(row.config_id, Configuration(row.config_id, row.config, [])).runs.append(row)
    sign = 1 if view.mode == "min" else -1
    for group in groups.values():
        group.runs.sort(key=lambda r: (not r.scored, sign * (r.final or 0.0), _order(r.replicate)))
    if view.race:
        return _judge_race(groups, view, sign)
    unranked = sorted((g for g in groups.values() if g.mean is None), key=lambda g: g.label())
    ranked = [g for g in groups.values() if g.mean is not None]
    seeds = compared_on(ranked)
    key = (lambda g: float(np.mean([g.scores[s] for s in seeds]))) if seeds else (lambda g: g.mean)
    ordered = sorted(ranked, key=lambda g: (sign * key(g), g.label()))
    if ordered:
        ordered[0].is_best = True
        if seeds:  # in this order the best is the first row, ties broken by label
            _, comparisons = compare([[g.scores[s] for s in seeds] for g in ordered], view.mode)
            for group, comparison in zip(ordered[1:], comparisons[1:]):
                group.comparison = comparison
                group.tied = None if comparison is None else not comparison.separated
    return ordered + unranked


def race_inputs(configs: list[Configuration]) -> tuple[dict, dict]:
    """What a race is judged on, per configuration id: {seed: finite final} and {seed: why it gave none}
    (a failed run, a diverged final)."""
    scores = {c.config_id: c.scores for c in configs}
    failures = {c.config_id: {**{r.replicate: "failed" for r in c.runs if r.outcome == "error"},
                              **{s: "diverged" for s in c.diverged_seeds}} for c in configs}
    return scores, failures


def replay_race(configs: list[Configuration], view: SweepView) -> Race:
    """The race as its recorded runs replay it: the same function and data the searcher decided with."""
    scores, failures = race_inputs(configs)
    ids = [c.config_id for c in sorted(configs, key=Configuration.label)]
    return run_race(ids, scores, failures, view.race["seeds"], view.race["first_seeds"], view.mode,
                    view.race["alpha"])


def _judge_race(groups: dict[str, Configuration], view: SweepView, sign: int) -> list[Configuration]:
    """Survivors (the last look's best first), then the eliminated, latest out first, then the rest."""
    race = replay_race(list(groups.values()), view)
    for round_ in race.rounds:
        for config_id, comparison in round_.comparisons.items():
            groups[config_id].comparison = comparison
    for config_id, out in race.eliminated.items():
        groups[config_id].out, groups[config_id].tied = out, False
    last = race.rounds[-1] if race.rounds else None
    alive = sorted((groups[c] for c in race.alive if groups[c].mean is not None),
                   key=lambda g: (g.config_id != (last.best if last else None), sign * g.mean, g.label()))
    for group in alive:
        group.tied = True if last else None
    if alive:
        alive[0].is_best, alive[0].tied = True, None
    out = sorted((groups[c] for c in race.eliminated), key=lambda g: (-g.out[0], g.label()))
    return alive + out + sorted((g for g in groups.values() if g not in alive and g not in out),
                                key=lambda g: g.label())


def compared_on(ranked: list[Configuration]) -> list:
    """The seeds every ranked configuration finished: the best is chosen and judged on these alone."""
    common = set.intersection(*(set(c.scores) for c in ranked)) if ranked else set()
    return sorted(common, key=_order)


def _order(replicate) -> tuple:
    """Seeds in numeric order, run ids (of runs without a seed) after them."""
    return type(replicate).__name__, replicate


def tied_set(configs: list[Configuration]) -> list[Configuration]:
    """The best configuration and every configuration statistically tied with it (a race's survivors)."""
    return [c for c in configs if c.is_best or c.tied]


def single_seed(configs: list[Configuration]) -> bool:
    """True when no configuration has two finished seeds: the ranking carries no uncertainty."""
    return all(c.n < 2 for c in configs)
