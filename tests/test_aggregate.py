"""Seed aggregates: IQM and intervals against hand computations; no CI claimed from too few values."""

import numpy as np
import pytest
from scipy.stats import bootstrap

from orchestration.aggregate import MIN_VALUES_FOR_CI, aggregate_over_seeds, interval, iqm, mean, to_markdown
from orchestration.summary import TrialRow


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx((3 + 4 + 5 + 6) / 4)
    assert iqm([100, 1, 2, 3]) == pytest.approx(2.5), "robust to one outlier"


def test_interval_is_scipys_bca_bootstrap_and_narrows_with_more_values():
    rng = np.random.default_rng(0)
    small, large = rng.normal(10, 2, 8), rng.normal(10, 2, 200)
    ci_small, ci_large = interval(small), interval(large)
    assert ci_small.kind == ci_large.kind == "95% CI"
    reference = bootstrap((small,), mean, confidence_level=0.95, n_resamples=2000, method="BCa",
                          random_state=np.random.default_rng(0)).confidence_interval
    assert (ci_small.low, ci_small.high) == pytest.approx((reference.low, reference.high))
    assert ci_small.low < small.mean() < ci_small.high and ci_large.low < large.mean() < ci_large.high
    assert ci_large.high - ci_large.low < ci_small.high - ci_small.low
    assert interval([5.0] * 6) == interval([5.0] * 6) and interval([5.0] * 6).low == 5.0


def test_too_few_values_give_a_range_not_a_ci():
    for n in range(1, MIN_VALUES_FOR_CI):
        spread = interval(np.arange(n, dtype=float) * 3)
        assert spread.kind == "range" and (spread.low, spread.high) == (0.0, 3.0 * (n - 1))
    assert "range" in interval([1.0, 2.0]).text()


def row(algorithm, seed, final):
    return TrialRow(name="", trial_id="", config={"algorithm": algorithm, "seed": seed}, final=final, best=final,
                    iterations=1, budget=1, wall_s=1.0, run_id="", status="TERMINATED")


def test_aggregate_groups_by_everything_but_the_seed():
    rows = [row("dqn", 0, 100.0), row("dqn", 1, 200.0), row("a2c", 0, 400.0), row("a2c", 1, 500.0),
            row("a2c", 2, None)] + [row("ppo", s, 10.0 * s) for s in range(6)]
    entries = {e["config"]["algorithm"]: e for e in aggregate_over_seeds(rows, ["algorithm", "seed"])}
    assert entries["dqn"]["runs"] == 2 and entries["dqn"]["mean"] == 150.0
    assert entries["a2c"]["runs"] == 2 and entries["a2c"]["iqm"] == 450.0
    assert (entries["a2c"]["low"], entries["a2c"]["high"], entries["a2c"]["interval"]) == (400.0, 500.0, "range")
    assert entries["ppo"]["interval"] == "95% CI" and entries["ppo"]["low"] < 25.0 < entries["ppo"]["high"]
    text = to_markdown(list(entries.values()), "return")
    assert "(range)" in text and "(95% CI)" in text and "not a confidence interval" in text
