"""Lines kept next to Tune's state (a folder or an object store) for a later run of the same sweep."""

from __future__ import annotations

import contextlib
import time

from orchestration.errors import infrastructure_failure


class StateNote:
    """A line kept next to Tune's state (a folder or an object store), for a later run of the same sweep."""

    FILE = ""

    def __init__(self, storage, name: str):
        self.storage, self.name = storage, name

    def put(self, text: str) -> None:
        with contextlib.suppress(OSError):  # a full disk may refuse even this
            self.storage.write_text(self.name, self.FILE, text)

    def read(self) -> str | None:
        return self.storage.read_text(self.name, self.FILE)

    def delete(self) -> None:
        self.storage.delete(self.name, self.FILE)


class FinishedNote(StateNote):
    """That every trial finished and the sweep's ending (results, registry) ran, so that `--resume` of a
    finished sweep says so instead of running the ending again and registering another model version. A sweep
    with failed trials gets none: its `--resume` retries them. Refused by a full disk, --resume redoes the
    ending."""

    FILE = "sweep_finished.txt"


class StoppedNote(StateNote):
    """Why the sweep stopped, for the parent run once --resume reaches MLflow."""

    FILE = "sweep_stopped.txt"

    def write(self, error: BaseException) -> None:
        reason = infrastructure_failure(error)
        if reason:
            self.say(reason)

    def say(self, reason: str) -> None:
        self.put(f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {reason}")
