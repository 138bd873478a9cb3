"""`race: {first_seeds: 2, max_seeds: 8, alpha: 0.05}`: racing (iterated F-race, irace's idea) across
configurations that run as parallel trials. Every candidate of a grid or random method starts with
`first_seeds` paired seeds; after each seed, `orchestration.verdict` eliminates those separated from the
best, and only survivors get the next seed, until `max_seeds` or until one is left. The results table
replays the race with the same function, so its tied set is the race's survivors.

Keeping the workers busy: the searcher hands out trials only when a slot is free (`slots`: the trials the
cluster fits at once, or --max-concurrent), lowest seed first. Once every seed the next look needs has
started, a free slot starts the seed after it for a survivor instead of idling (a speculative seed: lost
if its configuration is eliminated at that look, which the race's trial-seconds then include).
"""

from __future__ import annotations

import json
import math
import pickle
import time

from ray.tune.search import Searcher

from orchestration.errors import SweepError, quote
from orchestration.search.base import SEED
from orchestration.verdict import ALPHA, Race, run_race

KEYS = ("first_seeds", "max_seeds", "alpha")


class RaceBlock:
    """The `race:` block: its checks, what it adds to the parent run, and its searcher."""

    key = "race"

    def check(self, block, family, method, scheduler: dict, seeds, parameters: dict, where: str) -> dict:
        """One-line SweepError for a block or a combination a race cannot run; returns the block with its
        defaults filled in."""
        if not isinstance(block, dict):
            raise SweepError(f"{where}: must be a mapping with {', '.join(KEYS)}")
        extra = set(block) - set(KEYS)
        if extra:
            raise SweepError(f"{where}: unknown key(s) {', '.join(sorted(extra))}; allowed: {', '.join(KEYS)}")
        first, most, alpha = block.get("first_seeds", 2), block.get("max_seeds", 8), block.get("alpha", ALPHA)
        for key, value, low in (("first_seeds", first, 2), ("max_seeds", most, 2)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise SweepError(f"{where}.{key}: must be an integer >= {low} (two seeds are the fewest a paired "
                                 f"comparison can judge), got {quote(value)}")
        if most < first:
            raise SweepError(f"{where}: max_seeds ({most}) must be at least first_seeds ({first})")
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not 0 < alpha < 0.5:
            raise SweepError(f"{where}.alpha: must be a number in (0, 0.5), got {quote(alpha)}")
        if SEED not in family.params:
            raise SweepError(f"{where}: family {family.name} has no seed parameter to race on")
        if seeds is not None:
            raise SweepError(f"{where}: drop `seeds`; a race runs seeds 0..max_seeds-1 ({most}) where they are needed")
        if SEED in parameters:
            raise SweepError(f"{where}: drop parameters.seed; the race gives every candidate its seeds")
        if method.chooses_from_results:
            raise SweepError(f"{where}: method {method.name} picks each trial from the results so far, so there is "
                             "no fixed set of candidates to race; use method grid or random")
        if scheduler["type"] != "fifo":
            raise SweepError(f"{where}: scheduler {scheduler['type']} stops or changes trials mid-way, which leaves "
                             "holes in the paired seeds a race compares; a race stops configurations itself, "
                             "so drop the scheduler")
        return {"first_seeds": first, "max_seeds": most, "alpha": float(alpha)}

    def parent_param(self, spec) -> str:
        """What the results need to replay the race (`results.rows.SweepView.race`)."""
        return json.dumps({**spec.race, "seeds": spec.seed_values()})

    def searcher(self, spec, slots: int) -> "RaceSearcher":
        candidates = spec.configurations()
        return RaceSearcher(candidates, spec.seed_values(), spec.race["first_seeds"], spec.race["alpha"],
                            spec.metric, spec.mode, slots, spec.config_keys)


def _label(config: dict, keys: list[str]) -> str:
    return ",".join(f"{k}={config[k]}" for k in keys) or "(no swept parameters)"


class RaceSearcher(Searcher):
    """Tune's searcher for a race: which (configuration, seed) trial runs next, from the results so far."""

    CKPT_FILE_TMPL = "race-state-{}.pkl"

    def __init__(self, candidates: list[dict], seeds: list[int], first_seeds: int, alpha: float, metric: str,
                 mode: str, slots: int, config_keys: list[str]):
        from orchestration.search_space import config_id

        super().__init__(metric=metric, mode=mode)
        self.candidates = {config_id(c): c for c in candidates}  # a listed duplicate is one configuration
        self.seeds, self.first_seeds, self.alpha, self.slots = seeds, first_seeds, alpha, max(1, slots)
        self.keys = list(config_keys)
        self.scores: dict[str, dict] = {c: {} for c in self.candidates}
        self.failures: dict[str, dict] = {c: {} for c in self.candidates}
        self.running: dict[str, tuple[str, int]] = {}  # trial id -> (configuration id, seed)
        self.last: dict[str, float] = {}  # trial id -> the metric's latest value (not every result has it)
        self.started: set[tuple[str, int]] = set()
        self.printed = 0  # rounds already announced
        self.race = self._replay()

    # --- Tune's interface

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self.slots = min(self.slots, max_concurrent)
        return True  # Tune's ConcurrencyLimiter need not wrap it

    def suggest(self, trial_id: str):
        if self.race.decided:
            return Searcher.FINISHED
        if len(self.running) >= self.slots:
            return None
        # the seeds the next look needs first, then one seed ahead for survivors rather than an idle slot
        for index in range(min(self.race.next_seeds + 1, len(self.seeds))):
            for config in self.race.alive:
                seed = self.seeds[index]
                if (config, seed) not in self.started:
                    self.started.add((config, seed))
                    self.running[trial_id] = (config, seed)
                    return {**self.candidates[config], SEED: seed}
        return None

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if self.metric in result:
            self.last[trial_id] = result[self.metric]

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id not in self.running:
            return
        config, seed = self.running.pop(trial_id)
        latest = self.last.pop(trial_id, None)
        value = None if error else (result or {}).get(self.metric, latest)
        if value is None:
            self.failures[config][seed] = "failed"
        elif not math.isfinite(value):
            self.failures[config][seed] = "diverged"
        else:
            self.scores[config][seed] = float(value)
        self.race = self._replay()
        self._announce()

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))

    def get_state(self) -> dict:
        return {k: getattr(self, k) for k in ("scores", "failures", "running", "last", "started", "printed", "slots")}

    def set_state(self, state: dict) -> None:
        self.__dict__.update(state)
        self.race = self._replay()

    # --- the race

    def _replay(self) -> Race:
        return run_race(sorted(self.candidates, key=lambda c: _label(self.candidates[c], self.keys)),
                        self.scores, self.failures, self.seeds, self.first_seeds, self.mode, self.alpha)

    def _announce(self) -> None:
        """One line per look: `[race] round 3: 5 of 12 left (linear out at seed 3: +3.1 [1.7, 4.5]); ...`."""
        new = self.race.rounds[self.printed:]
        for round_ in new:
            left = len(round_.alive) - len(round_.out)
            outs = []
            for config, reason in round_.out.items():
                label = _label(self.candidates[config], self.keys)
                comparison = round_.comparisons.get(config)
                if comparison is not None and reason == "behind the best":
                    outs.append(f"{label} out at seed {round_.seeds}: {comparison.difference:+.4g} {self.metric} "
                                f"[{comparison.low:.4g}, {comparison.high:.4g}]")
                else:
                    outs.append(f"{label} out: {reason}")
            print(f"[race] {time.strftime('%H:%M:%S')} round {round_.number}: {left} of {len(self.candidates)} left"
                  + (f" ({'; '.join(outs)})" if outs else "") + f"; {len(self.started)} trials so far", flush=True)
        self.printed = len(self.race.rounds)
        if self.race.decided and new:
            best = self.race.rounds[-1].best if self.race.rounds else None
            names = [_label(self.candidates[c], self.keys) for c in self.race.alive]
            print(f"[race] decided after {self.race.looked} seeds: {len(names)} left"
                  + (f" ({'; '.join(names)})" if len(names) <= 6 else "")
                  + (f", best {_label(self.candidates[best], self.keys)}" if best else ""), flush=True)


RACE = RaceBlock()
