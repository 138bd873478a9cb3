"""Fault injection for testing recovery, driven by environment variables (forwarded to every node).

SWEEP_INJECT_FAILURE="<trial-name substring>@<iteration>" makes the first attempt of each matching
trial raise at that iteration; "<substring>@checkpoint:<iteration>" makes the checkpoint write after that
iteration fail with an I/O error (OSError EIO, as a network file system's hiccup; a full disk is not retried
but stops the sweep, see orchestration/disk_full.py). A marker file in SWEEP_INJECT_FAILURE_DIR (default:
the temp folder) records that it fired, so Tune's retry from the last checkpoint then succeeds.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

INJECT_FAILURE_ENV = "SWEEP_INJECT_FAILURE"


def inject_failure(trial_name: str, iteration: int, point: str = "step") -> None:
    """Raise once for a matching trial at the given iteration and point ("step" or "checkpoint");
    see the module docstring."""
    spec = os.environ.get(INJECT_FAILURE_ENV)
    if not spec:
        return
    pattern, _, at = spec.rpartition("@")
    where, _, at = at.rpartition(":")
    if pattern not in trial_name or iteration != int(at) or (where or "step") != point:
        return
    marker = Path(os.environ.get(f"{INJECT_FAILURE_ENV}_DIR", tempfile.gettempdir())) / (
        "injected-" + "".join(c if c.isalnum() else "_" for c in trial_name))
    if marker.exists():
        return
    marker.touch()
    if point == "checkpoint":
        raise OSError(errno.EIO, f"Input/output error (injected, {trial_name} checkpoint {iteration})")
    raise RuntimeError(f"injected failure in {trial_name} at iteration {iteration}")
