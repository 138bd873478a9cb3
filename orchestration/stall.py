"""A sweep that cannot make progress stops and says so, instead of waiting forever.

Tune keeps a trial PENDING for as long as the cluster cannot place it (a busy cluster, a node type
the autoscaler cannot launch, resources taken by someone else) and only warns now and then. The
guard below ends the sweep when trials are waiting, none is running, and for `timeout_s` none has run,
started, reported, finished or failed, and likewise when trials are PAUSED (population-based
training pauses every trial at a perturbation) and none is running or resumed. It ends it the way
Tune ends an interrupted run (Tune's own SIGUSR1 handler): the experiment state is saved with the
waiting trials still PENDING, so `--resume` continues exactly where it stopped.

A trial that runs but never reports is not a stall in this sense: one Atari iteration can take
minutes, so that case is left to the trial's own failure handling.
"""

from __future__ import annotations

import os
import signal
import time

from ray.tune import Callback

LOCAL_TIMEOUT_S = 300.0
AUTOSCALING_TIMEOUT_S = 1200.0  # allows for the autoscaler launching and setting up a GPU node


def interrupt_sweep() -> None:
    """End the sweep as Tune ends an interrupted run (its SIGUSR1 handler): the state is saved and every
    trial left resumable."""
    os.kill(os.getpid(), signal.SIGUSR1)


def default_timeout(autoscaling: bool) -> float:
    return AUTOSCALING_TIMEOUT_S if autoscaling else LOCAL_TIMEOUT_S


def stall_reason(statuses: list[str], idle_s: float, timeout_s: float) -> tuple[str, str] | None:
    """(why, what to do) when no trial is running and none has made progress for `timeout_s`, while some
    wait: PENDING ones the cluster cannot place, or PAUSED ones the scheduler does not continue."""
    if not timeout_s or idle_s <= timeout_s or "RUNNING" in statuses:
        return None
    if "PENDING" in statuses:
        return (f"no trial could start for {idle_s:.0f} s ({statuses.count('PENDING')} waiting, none running): "
                "the cluster cannot place them now",
                "free resources or ask for less (--cpus-per-trial, --gpus-per-trial, --set num_env_runners=N)")
    if "PAUSED" in statuses:
        return (f"no trial ran for {idle_s:.0f} s ({statuses.count('PAUSED')} paused, none running): "
                "the scheduler continues none of them",
                "see the failed trials' errors in MLflow")
    return None


class StallGuard(Callback):
    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self.last_progress = time.monotonic()
        self.reason: str | None = None  # set once the guard has stopped the sweep
        self.hint: str | None = None  # what the user can do about it

    def _progress(self, *args, **kwargs) -> None:
        self.last_progress = time.monotonic()

    on_trial_start = on_trial_restore = on_trial_result = on_trial_complete = on_trial_error = _progress
    on_trial_recover = _progress

    def on_step_begin(self, iteration: int, trials: list, **info) -> None:
        if self.reason is not None:
            return
        statuses = [t.status for t in trials]
        if "RUNNING" in statuses:  # the idle clock starts when the last running trial stops: one that ran for
            self._progress()  # an hour without reporting and then failed has not left the sweep idle for an hour
            return
        verdict = stall_reason(statuses, time.monotonic() - self.last_progress, self.timeout_s)
        if verdict is not None:
            self.reason, self.hint = verdict
            interrupt_sweep()
