"""Where a sweep's time goes besides training: what a user pays per trial for Ray, Tune and MLflow.

Two clocks. `Ledger` (in each trial) adds up the seconds a trial spends on orchestration work, by cause,
and reports the totals in every Tune result as `overhead/<cause>_s`. `Timeline` (in the driver) marks
the sweep's phases: checks, Ray's start, MLflow's setup, Tune, the end-of-sweep results. Both only read
clocks; `bench/sweep_overhead.py` turns them into the per-cause breakdown in BENCHMARKS.md.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict

PREFIX = "overhead/"


class Ledger:
    """Seconds spent per cause inside one trial (cumulative over the trial's attempts in this process)."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def timed(self, cause: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[cause] += time.perf_counter() - start

    def results(self) -> dict[str, float]:
        return {f"{PREFIX}{cause}_s": round(seconds, 4) for cause, seconds in self.seconds.items()}


def process_age_s() -> float:
    """Seconds since this process started (the interpreter's own start-up and imports included)."""
    import psutil

    return time.time() - psutil.Process().create_time()


class Timeline:
    """The driver's phases, in seconds since the process started."""

    def __init__(self):
        self.marks: dict[str, float] = {}
        self._zero = time.perf_counter() - process_age_s()

    def mark(self, phase: str) -> None:
        self.marks[phase] = round(time.perf_counter() - self._zero, 3)

    def durations(self) -> dict[str, float]:
        """Each phase's length: from the previous mark (or the process start) to its own."""
        out, previous = {}, 0.0
        for phase, at in self.marks.items():
            out[phase] = round(at - previous, 3)
            previous = at
        return out

    def summary(self) -> str:
        """One line: the seconds outside Tune, at the start and at the end."""
        d = self.durations()
        start = sum(d.get(k, 0.0) for k in ("checks", "ray", "mlflow"))
        return (f"time outside Tune: {start:.1f} s to start (checks {d.get('checks', 0):.1f}, Ray "
                f"{d.get('ray', 0):.1f}, MLflow {d.get('mlflow', 0):.1f}), {d.get('results', 0):.1f} s for the results")
