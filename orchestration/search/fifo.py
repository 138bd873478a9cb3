"""`scheduler: fifo` (the default): every trial runs its whole budget."""

from __future__ import annotations

from orchestration.search.base import Scheduler


class Fifo(Scheduler):
    name = "fifo"


SCHEDULER = Fifo()
