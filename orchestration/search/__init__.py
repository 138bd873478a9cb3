"""Search methods and schedulers as plug-ins, one module each behind one small interface (`base`).

A *method* says which configurations a sweep runs (`grid`, `random`, `bayes`); a *scheduler* says how long
each trial runs and what happens between trials (`fifo`, `asha`, `pbt`). Each module validates its part of
a search-space file with one-line errors, builds what Tune needs, and says how its results read.
`search_space.py` parses the file and asks these modules; it knows no method or scheduler by name. A new
one is a module here plus its line below.

An *extension* is a top-level block that changes how a method's configurations are run: `race` gives
seeds only to configurations still in the running.
"""

from __future__ import annotations

from orchestration.search import asha, bayes, fifo, grid, pbt, race, random
from orchestration.search.base import Method, Scheduler

METHODS: dict[str, Method] = {m.name: m for m in (grid.METHOD, random.METHOD, bayes.METHOD)}
SCHEDULERS: dict[str, Scheduler] = {s.name: s for s in (fifo.SCHEDULER, asha.SCHEDULER, pbt.SCHEDULER)}

EXTENSIONS = {e.key: e for e in (race.RACE,)}
