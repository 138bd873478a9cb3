"""The clocks behind bench/sweep_overhead.py's breakdown: they must add up, and count time spent in errors."""

import time

import pytest

from orchestration.overhead import PREFIX, Ledger, Timeline, process_age_s


def test_a_ledger_adds_up_each_cause_and_counts_the_seconds_of_a_call_that_raised():
    ledger = Ledger()
    with ledger.timed("tracking"):
        time.sleep(0.05)
    with pytest.raises(RuntimeError), ledger.timed("tracking"):
        time.sleep(0.05)
        raise RuntimeError("the server went away")
    with ledger.timed("checkpoints"):
        pass
    results = ledger.results()
    assert set(results) == {f"{PREFIX}tracking_s", f"{PREFIX}checkpoints_s"}
    assert 0.1 <= results[f"{PREFIX}tracking_s"] < 0.5
    assert 0 <= results[f"{PREFIX}checkpoints_s"] < 0.05


def test_a_timeline_starts_at_the_process_start_and_its_phases_add_up_to_the_last_mark():
    age = process_age_s()
    assert 0 < age < 3600  # this interpreter's age: imports included, as a sweep's "checks" phase includes them
    timeline = Timeline()
    timeline.mark("checks")
    time.sleep(0.05)
    timeline.mark("ray")
    phases = timeline.durations()
    assert list(phases) == ["checks", "ray"]
    assert phases["checks"] >= age - 0.01 and phases["ray"] >= 0.05
    assert sum(phases.values()) == pytest.approx(timeline.marks["ray"], abs=0.01)
    assert timeline.summary().startswith("time outside Tune: ")
