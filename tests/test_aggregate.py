"""Seed aggregates: IQM and bootstrap confidence intervals against hand computations."""

import numpy as np
import pytest

from orchestration.aggregate import aggregate_over_seeds, bootstrap_ci, iqm
from orchestration.summary import TrialRow


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx((3 + 4 + 5 + 6) / 4)
    assert iqm([100, 1, 2, 3]) == pytest.approx(2.5), "robust to one outlier"


def test_bootstrap_ci_covers_and_narrows():
    rng = np.random.default_rng(0)
    small, large = rng.normal(10, 2, 8), rng.normal(10, 2, 200)
    lo_s, hi_s = bootstrap_ci(small)
    lo_l, hi_l = bootstrap_ci(large)
    assert lo_s <= iqm(small) <= hi_s and lo_l <= iqm(large) <= hi_l
    assert hi_l - lo_l < hi_s - lo_s
    assert bootstrap_ci([5.0, 5.0, 5.0]) == (5.0, 5.0)


def row(algorithm, seed, final):
    return TrialRow(name="", trial_id="", config={"algorithm": algorithm, "seed": seed}, final=final, best=final,
                    iterations=1, budget=1, wall_s=1.0, run_id="", status="TERMINATED")


def test_aggregate_groups_by_everything_but_the_seed():
    rows = [row("dqn", 0, 100.0), row("dqn", 1, 200.0), row("a2c", 0, 400.0), row("a2c", 1, 500.0),
            row("a2c", 2, None)]
    entries = {e["config"]["algorithm"]: e for e in aggregate_over_seeds(rows, ["algorithm", "seed"])}
    assert entries["dqn"]["runs"] == 2 and entries["dqn"]["mean"] == 150.0
    assert entries["a2c"]["runs"] == 2 and entries["a2c"]["iqm"] == 450.0
    assert entries["a2c"]["ci_low"] >= 400.0 and entries["a2c"]["ci_high"] <= 500.0
