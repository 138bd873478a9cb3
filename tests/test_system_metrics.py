"""A trial's peak memory: exact on Linux (the kernel's high-water mark, reset per trial), sampled elsewhere."""

import sys
import time

import numpy as np
import pytest

from orchestration.system_metrics import MB, PEAK_RSS, PeakMemory

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's peak is Linux's")


def spike(megabytes: int) -> None:
    """Touch `megabytes` of fresh memory and free it at once: shorter than any sampling interval."""
    block = np.ones(megabytes * MB // 8)
    del block


@linux_only
def test_a_spike_between_samples_counts_and_the_next_trial_starts_from_its_own_rss():
    memory = PeakMemory(every_s=60.0)
    assert memory.kernel, "/proc/self/clear_refs is writable here"
    before = memory.metrics()[PEAK_RSS]
    spike(200)
    during = memory.metrics()[PEAK_RSS]
    assert during >= before + 190, (before, during)
    memory.stop()

    next_trial = PeakMemory(every_s=60.0)  # a reused worker's next trial: the last trial's spike is not its own
    assert next_trial.metrics()[PEAK_RSS] < during - 150


def test_without_the_kernels_peak_a_thread_samples_the_rss(monkeypatch, tmp_path):
    monkeypatch.setattr(PeakMemory, "CLEAR_REFS", tmp_path / "missing" / "clear_refs")
    memory = PeakMemory(every_s=0.01)
    assert not memory.kernel
    before = memory.metrics()[PEAK_RSS]
    block = np.ones(200 * MB // 8)
    time.sleep(0.2)  # held across many samples
    del block
    assert memory.metrics()[PEAK_RSS] >= before + 190
    memory.stop()
