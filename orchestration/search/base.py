"""The interface of a search method and of a scheduler. Both are plain objects with defaults that mean
"nothing special", so a plug-in overrides only what it changes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestration.family import Family
    from orchestration.results.groups import Configuration
    from orchestration.results.rows import SweepView
    from orchestration.search_space import SweepSpec

SEED = "seed"


class Method:
    """Which configurations a sweep runs, and in what order Tune gets them."""

    name = ""
    crosses_values = False  # listed `values` are crossed into every combination (grid), not drawn one per trial
    chooses_from_results = False  # picks each trial from the results so far (TPE), so no population up front
    seeds_refusal: str | None = None  # why replicate `seeds` cannot apply to this method, if they cannot

    def check(self, parameters: dict[str, dict], where: str) -> None:
        """One-line SweepError for a space this method cannot search."""

    def replicates_refusal(self, num_samples: int, seeds: int | None) -> str | None:
        """Why `num_samples` and `seeds` cannot go together here, if they cannot."""
        return None

    def search_alg(self, spec: "SweepSpec", seed: int | None, max_concurrent: int | None, shuffle: bool):
        """Tune's search algorithm, or None for Tune's own variant generator. `seed` is --search-seed;
        `shuffle`: the scheduler wants the trials in a seeded random order (`Scheduler.shuffles_trials`)."""
        return variant_generator(spec, seed, max_concurrent, shuffle, self.crosses_values)


class Scheduler:
    """How long each trial runs and what happens between trials."""

    name = ""
    keys: frozenset[str] = frozenset()  # the keys its `scheduler:` block may hold besides `type`
    shuffles_trials = False  # promotes trials against those that came before, so their order must be fair
    keeps_every_checkpoint = False  # later trials may restart from any earlier checkpoint

    def check(self, block: dict, family: "Family", parameters: dict[str, dict], method: Method,
              seeds: int | None, where: str) -> None:
        """One-line SweepError for a block or a space this scheduler cannot run."""

    def build(self, spec: "SweepSpec"):
        from ray import tune

        return tune.schedulers.FIFOScheduler()

    def mutations(self, block: dict) -> tuple[str, ...]:
        """Parameters that change during a trial (the trainable records them as hp/<name>)."""
        return ()

    def answer(self, best: "Configuration", view: "SweepView") -> list[str] | None:
        """The sweep's answer where its trials are not replicates; None: the replicate-based answer."""
        return None


def replicate(configs: list[dict], seeds: list[int]) -> list[dict]:
    """Every configuration with every seed, seed by seed: a sweep cut short still has whole seeds of
    every configuration, and seed k gives every configuration the same initialisation and data."""
    return [{**config, SEED: seed} for seed in seeds for config in configs]


def variant_generator(spec: "SweepSpec", seed: int | None, max_concurrent: int | None, shuffle: bool,
                      crosses_values: bool):
    """Tune's BasicVariantGenerator for the grid and random methods.

    With a scheduler that promotes trials against those that came before (ASHA), grid trials start in a
    seeded random order instead of Tune's nested-loop order, where the first trials differ in one
    parameter only and share the first value of every other (all learning rates with the first
    schedule, say), so a whole slice of the grid would run to the end however it scores.

    With replicates (`seeds`), every trial is given explicitly: the configurations crossed with the
    seeds. Under ASHA each (configuration, seed) trial is halved on its own result, so a configuration
    may lose some seeds early; the results table says how many of its seeds finished and compares
    configurations on finished seeds only.

    `seed` (--search-seed) makes the draws repeatable: the random method's values and the orders above.
    Without it, random search draws from Tune's unseeded generator. `max_concurrent` (--max-concurrent)
    goes into the generator itself: Tune applies max_concurrent_trials only to the generator it makes
    itself or to a Searcher such as TPE."""
    import random

    from ray.tune.search.basic_variant import BasicVariantGenerator

    draws_seed, limit = seed, max_concurrent or 0  # 0: no limit
    seed = 0 if seed is None else seed
    if spec.seeds:
        configs = spec.configurations(sample_seed=seed)
        if shuffle:
            random.Random(seed).shuffle(configs)
        return BasicVariantGenerator(points_to_evaluate=replicate(configs, spec.seed_values()), max_concurrent=limit)
    points = spec.grid_points()
    if not shuffle or not crosses_values or not points[0]:  # {}: nothing is listed
        return None if draws_seed is None else BasicVariantGenerator(random_state=draws_seed, max_concurrent=limit)
    random.Random(seed).shuffle(points)
    return BasicVariantGenerator(points_to_evaluate=points, max_concurrent=limit)
