"""Which configurations the seeds separate from the best: the one rule behind the results table's "tied with
best" and behind racing's eliminations, so a race's survivors are exactly the table's tied set.

The test, at each look at n paired seeds of the k configurations still compared:
- the best is the one with the best mean over those seeds;
- the noise is the residual variance of the two-way layout (configuration x seed): what is left of each
  score after its configuration's mean and its seed's mean. Seeds are blocks, as in a paired t test, but
  the variance is pooled over all k configurations, with (k-1)(n-1) degrees of freedom instead of n-1, so
  two or three seeds can already separate a clearly worse configuration;
- configuration c is separated (not tied, eliminated in a race) when the best is ahead of it by more than
  t * sqrt(2 s^2 / n), one-sided, at level alpha / ((k-1) * L^0.7):
  - (k-1): Bonferroni over the comparisons with the best (Hsu's multiple comparisons with the best), so a
    configuration as good as the best is separated with probability at most alpha even when many others tie
    with it and the best is only the luckiest of them;
  - L^0.7: a race looks L = max_seeds - first_seeds + 1 times. Repeated looks at growing data would
    eliminate a truly tied configuration more often than alpha; this constant per-look level is a Pocock-style
    boundary whose exponent was calibrated by simulation (tests/test_verdict.py reruns it) to keep the
    whole race's rate at alpha: with 4,000 simulated races each, 2-4 configurations all alike and 3-8 seeds,
    0.6 let it reach 0.059, 0.7 kept it at or below 0.048 (Bonferroni over looks, L^1, would leave it
    near 0.02 and cost power).
  The table of a sweep that does not race makes one look (L = 1).
- step down (Holm): the configurations separated at a look leave, and the rest are compared again with the
  noise pooled over them alone and k counting them alone, until none leaves. The noise that matters is the
  contenders': measured on 8 seeds of the `rl` sweep, A2C at lr 0.002 (sd 22 over seeds) was tied with
  Double DQN (sd 45) only because Double DQN at lr 0.001 (sd 82) and A2C at 0.001 (sd 77), far behind,
  inflated the pooled noise, and a race, which drops those first, then separated them.

Why not Friedman with post-hoc tests (irace): ranks need more seeds to say anything (with 2 configurations
a sign test cannot reach p < 0.05 before 5 seeds), and racing is there to stop early. The price of the t
test is an assumption: a similar seed-to-seed noise among the contenders (a very erratic one compared against
a pooled, calmer noise looks more different than it is).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

ALPHA = 0.05
LOOK_EXPONENT = 0.7


@dataclass(frozen=True)
class Comparison:
    """One configuration against the best at one look; `difference` = its mean - the best's mean (the
    metric's own units and sign), with the interval at the look's level."""

    difference: float
    low: float
    high: float
    separated: bool


def look_level(alpha: float, compared: int, looks: int = 1) -> float:
    """The one-sided level of each comparison with the best at one look."""
    return alpha / (max(compared - 1, 1) * looks ** LOOK_EXPONENT)


def compare(scores: np.ndarray, mode: str, alpha: float = ALPHA, looks: int = 1
            ) -> tuple[int, list[Comparison | None]]:
    """`scores`: configurations x seeds (the same seeds for every row). Returns the best row and, for every
    row, its comparison with the best (None for the best itself, and for all rows below two seeds), step
    down: the rows separated from the best leave, and the rest are compared again, their noise estimated
    from them alone and the level divided by fewer comparisons (Holm's step-down), until no row leaves.
    Without that, a very noisy configuration far behind would inflate the pooled noise and keep the
    contenders tied however clearly the data order them: the tied set would depend on which hopeless
    configurations the sweep happened to include."""
    scores = np.asarray(scores, dtype=float)
    rows = list(range(len(scores)))
    comparisons: list[Comparison | None] = [None] * len(scores)
    while True:
        best, step = _compare_once(scores[rows], mode, alpha, looks)
        for row, comparison in zip(rows, step):
            comparisons[row] = comparison
        left = [row for row, comparison in zip(rows, step) if not (comparison and comparison.separated)]
        if len(left) == len(rows) or len(left) < 2:
            return rows[best], comparisons
        rows = left


def _compare_once(scores: np.ndarray, mode: str, alpha: float, looks: int) -> tuple[int, list[Comparison | None]]:
    """One step of `compare`: every row against the best with the noise pooled over all rows."""
    scores = np.asarray(scores, dtype=float)
    k, n = scores.shape
    means = scores.mean(axis=1)
    best = int(np.argmin(means) if mode == "min" else np.argmax(means))
    if k < 2 or n < 2:
        return best, [None] * k
    residuals = scores - means[:, None] - scores.mean(axis=0)[None, :] + scores.mean()
    df = (k - 1) * (n - 1)
    spread = math.sqrt(2 * float((residuals ** 2).sum()) / df / n)
    from scipy.stats import t as student_t  # not at the top: trial workers import this module; scipy.stats: 0.7 s

    critical = float(student_t.ppf(1 - look_level(alpha, k, looks), df))
    comparisons: list[Comparison | None] = []
    for row in range(k):
        if row == best:
            comparisons.append(None)
            continue
        difference = float(means[row] - means[best])
        behind = abs(difference)  # the best is never behind
        half = critical * spread
        comparisons.append(Comparison(difference, difference - half, difference + half,
                                      separated=behind > half and behind > 0))
    return best, comparisons


@dataclass
class Round:
    """One look of a race: the configurations still in it, and what happened to each."""

    number: int  # 1 = the look after first_seeds seeds
    seeds: int
    alive: list[str]  # configuration ids compared at this look, best first
    best: str | None
    means: dict[str, float]
    comparisons: dict[str, Comparison | None]
    out: dict[str, str]  # configuration id -> why it left at this look


@dataclass
class Race:
    """A race replayed over the scores recorded so far; the same function runs it live (the searcher) and
    afterwards (the results table), so both always agree."""

    rounds: list[Round] = field(default_factory=list)
    eliminated: dict[str, tuple[int, str]] = field(default_factory=dict)  # id -> (round, reason)
    alive: list[str] = field(default_factory=list)
    next_seeds: int = 0  # seeds every configuration still in needs before the next look
    decided: bool = False  # one left, or max_seeds reached: nobody needs another seed

    @property
    def looked(self) -> int:
        return self.rounds[-1].seeds if self.rounds else 0


def run_race(ids: list[str], scores: dict[str, dict], failures: dict[str, dict], seeds: list, first_seeds: int,
             mode: str, alpha: float = ALPHA) -> Race:
    """Replay a race over seeds in `seeds` order (at most max_seeds of them): `scores[id][seed]` are finished
    finite results; `failures[id][seed]` says why a seed gave none (diverged, failed). A configuration whose
    seed failed or diverged leaves at the look that needs that seed. The replay stops at the first look some
    remaining configuration has no result for yet."""
    race = Race(alive=list(ids))
    looks = len(seeds) - first_seeds + 1
    n = min(first_seeds, len(seeds))
    number = 1
    while True:
        race.next_seeds = n
        needed = seeds[:n]
        if any(s not in scores.get(c, {}) and s not in failures.get(c, {}) for c in race.alive for s in needed):
            return race
        out = {}
        for c in race.alive:
            failed = [s for s in needed if s in failures.get(c, {})]
            if failed:
                out[c] = f"{failures[c][failed[0]]} at seed {failed[0]}"
        compared = [c for c in race.alive if c not in out]
        matrix = np.array([[scores[c][s] for s in needed] for c in compared]) if compared else np.zeros((0, n))
        best, comparisons = compare(matrix, mode, alpha, looks) if compared else (None, [])
        for c, comparison in zip(compared, comparisons):
            if comparison is not None and comparison.separated:
                out[c] = "behind the best"
        means = {c: float(matrix[i].mean()) for i, c in enumerate(compared)}
        order = sorted(compared, key=lambda c: means[c] if mode == "min" else -means[c])
        race.rounds.append(Round(number, n, order + [c for c in race.alive if c not in compared],
                                 None if best is None else compared[best], means,
                                 dict(zip(compared, comparisons)), out))
        for c, reason in out.items():
            race.eliminated[c] = (number, reason)
        race.alive = [c for c in race.alive if c not in out]
        if len(race.alive) <= 1 or n >= len(seeds):
            race.decided = True
            race.next_seeds = n
            return race
        n, number = n + 1, number + 1


def round_of(seed_index: int, first_seeds: int) -> int:
    """The race round that first looks at the seed at this position (0-based) of the race's seed order."""
    return max(1, seed_index - first_seeds + 2)
