"""Trials that no node could ever hold are refused before anything runs (orchestration.resources)."""

import pytest

from conftest import REPO
from orchestration.errors import SweepError
from orchestration.resources import ClusterShape, autoscaler_node_types, check_trials_fit, unsatisfiable

TWO_CPUS = ClusterShape(nodes=[{"CPU": 2.0}], node_types=[], autoscaling=False)
TRIAL = {"CPU": 1, "GPU": 0}


def test_a_fixed_cluster_must_hold_the_whole_placement_group():
    assert unsatisfiable([TRIAL, {"CPU": 1}], TWO_CPUS) is None
    assert unsatisfiable([TRIAL] + [{"CPU": 1}] * 4, TWO_CPUS) == \
        "it asks for 5 CPU + 0 GPU in all, the cluster has 2 CPU + 0 GPU"
    assert "no node can hold 64 CPU + 0 GPU (the largest has 2 CPU + 0 GPU)" in unsatisfiable([{"CPU": 64}], TWO_CPUS)
    assert "no node can hold 1 CPU + 0.5 GPU" in unsatisfiable([{"CPU": 1, "GPU": 0.5}], TWO_CPUS)
    two_nodes = ClusterShape(nodes=[{"CPU": 2.0}, {"CPU": 2.0}], node_types=[], autoscaling=False)
    assert unsatisfiable([TRIAL] + [{"CPU": 1}] * 3, two_nodes) is None, "PACK may spread the bundles"


def test_an_autoscaling_cluster_is_judged_by_its_node_types():
    gpu_type = ClusterShape(nodes=[{"CPU": 4.0}], node_types=[{"CPU": 8, "GPU": 1}], autoscaling=True)
    assert unsatisfiable([{"CPU": 1, "GPU": 0.5}] + [{"CPU": 1}] * 8, gpu_type) is None
    assert "no node can hold 1 CPU + 2 GPU" in unsatisfiable([{"CPU": 1, "GPU": 2}], gpu_type)
    undeclared = ClusterShape(nodes=[{"CPU": 4.0}], node_types=[None], autoscaling=True)
    assert unsatisfiable([{"CPU": 1, "GPU": 4}], undeclared) is None, "unknown resources are not refused"


def test_node_types_come_from_the_cluster_launchers_bootstrap_config(tmp_path):
    assert autoscaler_node_types(tmp_path / "missing.yaml") == ([], False)
    types, autoscaling = autoscaler_node_types(REPO / "cluster.yaml")
    assert autoscaling and {"CPU": 4} in types and None in types  # GPU types: filled in by `ray up`


def test_the_error_names_the_request_and_what_to_change():
    with pytest.raises(SweepError) as err:
        check_trials_fit({"algorithm=dqn": [TRIAL] + [{"CPU": 1}] * 4}, TWO_CPUS)
    message = str(err.value)
    assert message.startswith("a trial (algorithm=dqn: 1 CPU + 0 GPU for the trial, 4 x 1 CPU + 0 GPU for "
                              "EnvRunners) can never start")
    assert "--set num_env_runners=N" in message and "--address" in message and "\n" not in message


def test_the_stall_guard_names_waiting_and_paused_trials_but_not_running_ones():
    from orchestration.stall import stall_reason

    assert stall_reason(["PENDING", "RUNNING"], idle_s=999, timeout_s=60) is None, "a running trial is progress"
    assert stall_reason(["PENDING", "TERMINATED"], idle_s=30, timeout_s=60) is None, "not yet"
    assert stall_reason(["PENDING"], idle_s=999, timeout_s=0) is None, "0 turns the guard off"
    reason, hint = stall_reason(["PENDING", "PENDING", "TERMINATED"], idle_s=61, timeout_s=60)
    assert reason.startswith("no trial could start for 61 s (2 waiting") and "--cpus-per-trial" in hint
    # synchronous PBT pauses every trial at a perturbation; if none is continued, the sweep would wait forever
    reason, hint = stall_reason(["PAUSED", "PAUSED", "ERROR"], idle_s=61, timeout_s=60)
    assert reason.startswith("no trial ran for 61 s (2 paused, none running)") and "errors" in hint
    assert stall_reason(["TERMINATED", "ERROR"], idle_s=999, timeout_s=60) is None, "nothing waits: Tune ends the sweep"


def test_the_trials_a_cluster_runs_at_once_are_the_slots_a_race_keeps_busy():
    from orchestration.resources import trials_at_once

    two_nodes = ClusterShape(nodes=[{"CPU": 4.0, "GPU": 1.0}, {"CPU": 4.0}], node_types=[], autoscaling=False)
    learner_and_runners = [{"CPU": 1.0}, {"CPU": 1.0}, {"CPU": 1.0}]  # a trial plus 2 EnvRunners
    assert trials_at_once({"rl": learner_and_runners}, two_nodes) == 2  # 8 CPUs // 3
    assert trials_at_once({"one": [{"CPU": 1.0}], "half a GPU": [{"CPU": 1.0, "GPU": 0.5}]}, two_nodes) == 2
    assert trials_at_once({"big": [{"CPU": 16.0}]}, two_nodes) == 1  # never below one


def test_the_stall_clock_starts_when_the_last_running_trial_stops():
    """A trial that runs for long without reporting, then fails and waits for its retry, has not left the
    sweep idle all that time (a full disk behind a tracking server once looked like a 12-minute stall)."""
    import signal
    import time
    from types import SimpleNamespace

    from orchestration.stall import StallGuard

    stopped = []
    previous = signal.signal(signal.SIGUSR1, lambda *_: stopped.append(True))
    try:
        guard = StallGuard(timeout_s=60)
        guard.last_progress = time.monotonic() - 1000  # the last result came long ago
        guard.on_step_begin(0, [SimpleNamespace(status="RUNNING")])
        guard.on_step_begin(1, [SimpleNamespace(status="PENDING")])  # it failed and waits for its retry
        assert guard.reason is None and not stopped
        guard.last_progress = time.monotonic() - 61
        guard.on_step_begin(2, [SimpleNamespace(status="PENDING")])
        assert guard.reason.startswith("no trial could start for 61 s") and stopped == [True]
    finally:
        signal.signal(signal.SIGUSR1, previous)
