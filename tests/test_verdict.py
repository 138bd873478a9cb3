"""The tied/elimination rule (`orchestration.verdict`): hand-computed cases and simulated races.

The simulations draw score = configuration effect + seed effect (shared by every configuration, sd 3) +
noise (sd 1, independent per configuration and seed). "Worse by 2 noise standard deviations" is read as 2
standard deviations of what a paired comparison sees, the per-seed difference between two configurations
(sd sqrt(2)), i.e. 2*sqrt(2) here. Read as 2 sd of one configuration's own noise, no test can reach the
issue's 90% by seed 4: even knowing the variance, the most powerful one-sided 5% test on 4 paired
differences has power 1 - Phi(1.645 - 2.83) = 0.88.
"""

import math

import numpy as np
import pytest

from orchestration.verdict import compare, look_level, round_of, run_race

RACES = 2000
ALPHA = 0.05
MONTE_CARLO = 2 * math.sqrt(ALPHA * (1 - ALPHA) / RACES)  # two standard errors of a rate near alpha


def test_two_configurations_are_a_paired_t_test():
    """k = 2: the pooled residual variance is the paired differences' variance; hand-computed."""
    a, b = [1.0, 2.0, 3.0], [2.0, 3.5, 4.0]  # differences 1, 1.5, 1: mean 7/6, sd sqrt(1/12)
    best, (first, second) = compare(np.array([a, b]), "min")
    assert best == 0 and first is None
    se = math.sqrt(1 / 12) / math.sqrt(3)  # 1/6
    half = 2.919986 * se  # t_{0.95, 2}
    assert second.difference == pytest.approx(7 / 6)
    assert (second.low, second.high) == pytest.approx((7 / 6 - half, 7 / 6 + half), rel=1e-5)
    assert second.separated
    # the same data maximised: b is best, a is behind by as much
    best, comparisons = compare(np.array([a, b]), "max")
    assert best == 1 and comparisons[0].difference == pytest.approx(-7 / 6) and comparisons[0].separated


def test_a_difference_inside_the_noise_is_not_separated():
    a, b = [1.0, 2.0, 3.0], [1.5, 1.8, 3.4]  # differences 0.5, -0.2, 0.4: mean 0.233, sd 0.379
    _, (_, second) = compare(np.array([a, b]), "min")
    assert second.low < 0 < second.high and not second.separated


def test_the_level_is_shared_by_the_comparisons_and_the_looks():
    assert look_level(0.05, compared=2) == pytest.approx(0.05)
    assert look_level(0.05, compared=3, looks=4) == pytest.approx(0.05 / (2 * 4 ** 0.7))
    # three configurations: the pooled variance has (3-1)(3-1) = 4 degrees of freedom
    scores = np.array([[1.0, 2.0, 3.0], [2.0, 3.5, 4.0], [1.2, 2.1, 3.1]])
    _, comparisons = compare(scores, "min", looks=4)
    residuals = scores - scores.mean(1, keepdims=True) - scores.mean(0, keepdims=True) + scores.mean()
    spread = math.sqrt(2 * (residuals ** 2).sum() / 4 / 3)
    from scipy.stats import t

    half = t.ppf(1 - 0.05 / (2 * 4 ** 0.7), 4) * spread
    assert comparisons[1].high - comparisons[1].difference == pytest.approx(half)


def test_below_two_seeds_nothing_is_judged():
    best, comparisons = compare(np.array([[1.0], [5.0]]), "min")
    assert best == 0 and comparisons == [None, None]


def test_a_race_replays_looks_until_a_result_is_missing():
    seeds = [0, 1, 2, 3]
    scores = {"good": {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0}, "twin": {0: 1.0, 1: 2.0, 2: 3.0},
              "bad": {0: 9.0, 1: 10.5, 2: 11.0}}
    race = run_race(["good", "twin", "bad"], scores, {}, seeds, 2, "min")
    # look 1 (2 seeds): df 2; bad is 8.25 behind with a tiny residual: out. Look 2 (3 seeds) is complete for
    # good and twin, look 3 waits for twin's seed 3.
    assert race.eliminated == {"bad": (1, "behind the best")}
    assert [r.seeds for r in race.rounds] == [2, 3] and race.alive == ["good", "twin"]
    assert race.next_seeds == 4 and not race.decided


def test_a_failed_or_diverged_seed_ends_its_configuration_at_the_look_that_needs_it():
    seeds = [0, 1, 2]
    scores = {"a": {0: 1.0, 1: 2.0, 2: 3.0}, "b": {0: 1.1, 1: 2.0}, "c": {0: 1.0, 1: 2.1, 2: 2.9}}
    race = run_race(["a", "b", "c"], scores, {"b": {2: "diverged"}}, seeds, 2, "min")
    assert race.eliminated == {"b": (2, "diverged at seed 2")}
    assert race.decided and sorted(race.alive) == ["a", "c"]


def test_the_race_is_decided_when_one_is_left():
    scores = {"a": {0: 1.0, 1: 2.0}, "b": {0: 5.0, 1: 6.1}}
    race = run_race(["a", "b"], scores, {}, [0, 1, 2, 3], 2, "min")
    assert race.decided and race.alive == ["a"] and race.eliminated["b"][0] == 1


def test_rounds_of_seeds():
    assert [round_of(i, 2) for i in range(5)] == [1, 1, 2, 3, 4]


def simulate(means: list[float], first_seeds: int, max_seeds: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    ids = [f"c{i}" for i in range(len(means))]
    seeds = list(range(max_seeds))
    outcomes = []
    for _ in range(RACES):
        scores = (np.array(means)[:, None] + rng.normal(size=(len(means), max_seeds))
                  + 3 * rng.normal(size=max_seeds)[None, :])
        race = run_race(ids, {c: dict(enumerate(scores[i])) for i, c in enumerate(ids)}, {}, seeds, first_seeds,
                        "max")
        outcomes.append(race.eliminated)
    return outcomes


@pytest.mark.parametrize("first_seeds,max_seeds", [(2, 4), (2, 8)])
def test_a_configuration_as_good_as_the_best_is_rarely_eliminated(first_seeds, max_seeds):
    """Six configurations: two best (c0, c1), one 2 sd behind, three far behind; and six all alike, where
    the best is only the luckiest. Each alike one is eliminated in at most alpha of the races."""
    worse = 2 * math.sqrt(2)
    races = simulate([0, 0, -worse, -5, -5, -5], first_seeds, max_seeds)
    for best in ("c0", "c1"):
        assert np.mean([best in out for out in races]) <= ALPHA + MONTE_CARLO
    alike = simulate([0] * 6, first_seeds, max_seeds, seed=1)
    for config in ("c0", "c3", "c5"):
        assert np.mean([config in out for out in alike]) <= ALPHA + MONTE_CARLO


def test_one_two_noise_sds_behind_is_eliminated_by_seed_4():
    """By seed 4: 90% of races with max_seeds 4 (3 looks), 83% with max_seeds 8, where alpha is shared by 7
    looks. The issue asked for 90%: missed by 7 points at max_seeds 8, the price of keeping a tied
    configuration's elimination rate at alpha over all the looks (without that correction: 97%, at 13%)."""
    worse = 2 * math.sqrt(2)
    for max_seeds, power in ((4, 0.88), (8, 0.81)):
        races = simulate([0, 0, -worse, -5, -5, -5], 2, max_seeds, seed=2)
        by_seed_4 = np.mean([out.get("c2", (99,))[0] + 1 <= 4 for out in races])
        assert by_seed_4 >= power, (max_seeds, by_seed_4)
