"""Statistics against hand computations: IQM, t intervals, paired differences, Wilson, bootstrap."""

import math

import numpy as np
import pytest
from scipy.stats import bootstrap

from orchestration.aggregate import (MIN_VALUES_FOR_CI, interval, iqm, mean, paired_difference, t_interval,
                                     wilson_interval)


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx((3 + 4 + 5 + 6) / 4)
    assert iqm([100, 1, 2, 3]) == pytest.approx(2.5), "robust to one outlier"


def test_t_interval_by_hand():
    values = [4.0, 5.0, 9.0]  # mean 6, sample sd sqrt(7), t(0.975, 2) = 4.302653
    half = 4.302653 * math.sqrt(7) / math.sqrt(3)
    ci = t_interval(values)
    assert (ci.low, ci.high) == pytest.approx((6 - half, 6 + half), rel=1e-6) and ci.kind == "95% CI"
    assert t_interval([3.0]) is None, "one value has no spread"
    assert (t_interval([2.0, 2.0, 2.0]).low, t_interval([2.0, 2.0, 2.0]).high) == (2.0, 2.0)


def test_paired_difference_uses_common_seeds_only():
    a = {0: 10.0, 1: 12.0, 2: 11.0, 7: 100.0}
    b = {0: 9.0, 1: 10.5, 2: 10.0}
    d = paired_difference(a, b)  # differences 1.0, 1.5, 1.0 over seeds 0-2
    expected = t_interval([1.0, 1.5, 1.0])
    assert (d.low, d.high) == pytest.approx((expected.low, expected.high))
    assert not d.contains(0.0), "a consistent difference is significant even when the seeds vary a lot"
    assert paired_difference({0: 1.0}, {0: 2.0, 1: 3.0}) is None


def test_wilson_interval_by_hand():
    ci = wilson_interval(8, 10)  # Wilson (1927): 8/10 at 95% -> [0.4902, 0.9433]
    assert (ci.low, ci.high) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(0, 20).low == pytest.approx(0.0, abs=1e-12) and wilson_interval(20, 20).high == \
        pytest.approx(1.0)


def test_bootstrap_interval_is_scipys_bca_and_narrows_with_more_values():
    rng = np.random.default_rng(0)
    small, large = rng.normal(10, 2, 8), rng.normal(10, 2, 200)
    ci_small, ci_large = interval(small), interval(large)
    assert ci_small.kind == ci_large.kind == "95% CI"
    reference = bootstrap((small,), mean, confidence_level=0.95, n_resamples=2000, method="BCa",
                          random_state=np.random.default_rng(0)).confidence_interval
    assert (ci_small.low, ci_small.high) == pytest.approx((reference.low, reference.high))
    assert ci_small.contains(small.mean()) and ci_large.contains(large.mean())
    assert ci_large.high - ci_large.low < ci_small.high - ci_small.low
    assert interval([5.0] * 6).low == interval([5.0] * 6).high == 5.0


def test_too_few_values_give_a_range_not_a_ci():
    for n in range(1, MIN_VALUES_FOR_CI):
        spread = interval(np.arange(n, dtype=float) * 3)
        assert spread.kind == "range" and (spread.low, spread.high) == (0.0, 3.0 * (n - 1))
    assert "range" in interval([1.0, 2.0]).text()
