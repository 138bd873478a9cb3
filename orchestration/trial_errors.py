"""Trial failures on the driver's terminal: each distinct error once, in one line, with its traceback's path.

Tune would print every failure's full traceback (pages of Ray and pyarrow frames per retry); the sweep turns
that off (TUNE_PRINT_ALL_TRIAL_ERRORS=0, see `sweep.main`) and prints this instead. The full tracebacks stay in
Tune's error files and in each run's error.txt in MLflow.

A full disk is not a trial's problem but the sweep's: the first such error ends the sweep (resumably, as an
interruption does) within seconds, instead of letting Tune retry every trial into the same full disk. See
`orchestration.disk_full` for why a retry on another node would not help either.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ray.tune import Callback

from orchestration.errors import last_error_line, text_says_disk_full
from orchestration.stall import interrupt_sweep


def latest_failure(error_file: str | None) -> str:
    """The text of the last failure Tune appended to a trial's error file."""
    try:
        text = Path(error_file).read_text(errors="replace") if error_file else ""
    except OSError:
        return ""
    blocks = text.split("Failure # ")
    return blocks[-1].split("\n", 1)[-1] if len(blocks) > 1 else text


class TrialErrors(Callback):
    def __init__(self, out=None):
        self.out = out
        self.seen: set[str] = set()
        self.disk_full: tuple[str, str] | None = None  # (the traceback, which trial): set once the sweep stops

    def on_trial_recover(self, iteration: int, trials: list, trial, **info) -> None:
        self._report(trial, "retrying from its last checkpoint")

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self._report(trial, "no retries left")

    def _report(self, trial, then: str) -> None:
        text = latest_failure(trial.error_file)
        line = last_error_line(text)
        disk_full = text_says_disk_full(text)
        if disk_full:
            then = "stopping the sweep"
        if line not in self.seen:
            self.seen.add(line)
            print(f"[sweep] trial {trial} failed ({then}): {line} (traceback: {trial.error_file})",
                  file=self.out or sys.stderr, flush=True)
        if disk_full and self.disk_full is None:
            self.disk_full = (text, f"trial {trial}")
            interrupt_sweep()
