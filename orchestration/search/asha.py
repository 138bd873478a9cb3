"""`scheduler: {type: asha, max_t, grace_period, reduction_factor}`: asynchronous successive halving
(Tune's ASHAScheduler) stops trials that trail at a rung. A stopped seed is left out of its
configuration's mean (the results table says `finished k/n`)."""

from __future__ import annotations

from orchestration.errors import SweepError, quote
from orchestration.search.base import Scheduler


class Asha(Scheduler):
    name = "asha"
    keys = frozenset({"max_t", "grace_period", "reduction_factor"})
    shuffles_trials = True  # a trial is promoted against those that reached its rung before it

    def check(self, block, family, parameters, method, seeds, where) -> None:
        for key, low in (("max_t", 1), ("grace_period", 1), ("reduction_factor", 2)):
            if key in block and (not isinstance(block[key], int) or isinstance(block[key], bool) or block[key] < low):
                raise SweepError(f"{where}.{key}: must be an integer >= {low}, got {quote(block[key])}")
        if block.get("grace_period", 1) > block.get("max_t", block.get("grace_period", 1)):
            raise SweepError(f"{where}: grace_period must not exceed max_t")

    def build(self, spec):
        from ray import tune

        return tune.schedulers.ASHAScheduler(
            time_attr="training_iteration", max_t=spec.scheduler.get("max_t", spec.budget()),
            grace_period=spec.scheduler.get("grace_period", 1),
            reduction_factor=spec.scheduler.get("reduction_factor", 2))


SCHEDULER = Asha()
