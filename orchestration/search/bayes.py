"""`method: bayes`: Optuna's tree-structured Parzen estimator (TPE), seeded, through Tune's OptunaSearch.
Tune gives it the sweep's metric and mode, limits it by --max-concurrent (max_concurrent_trials), tells it
about trials ASHA stops early, and saves its study with the experiment, so --resume continues it."""

from __future__ import annotations

from orchestration.errors import SweepError, quote
from orchestration.search.base import Method


def startup_trials(num_samples: int) -> int:
    """Random trials before TPE models the results: a fifth of the budget, between 2 and 10 (Optuna's
    default is 10, which would leave a 20-trial sweep half random)."""
    return max(2, min(10, num_samples // 5))


class Bayes(Method):
    name = "bayes"
    chooses_from_results = True
    seeds_refusal = ("method bayes chooses each trial from the results so far, so it runs one seed per trial; "
                     "replicate its answer afterwards with a grid of the values it found and `seeds`")

    def check(self, parameters: dict[str, dict], where: str) -> None:
        """TPE needs something to search, and categories it can compare (Optuna's categorical values are
        numbers, strings, booleans or None)."""
        if all("value" in entry for entry in parameters.values()):
            raise SweepError(f"{where}: method bayes needs at least one parameter with 'values' or a 'distribution'")
        for key, entry in parameters.items():
            for i, value in enumerate(entry.get("values", [])):
                if value is not None and not isinstance(value, (bool, int, float, str)):
                    raise SweepError(f"{where}: parameters.{key}.values[{i}]: method bayes takes numbers, strings "
                                     f"or booleans as values, got {quote(value)}")

    def search_alg(self, spec, seed: int | None, max_concurrent: int | None, shuffle: bool):
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(n_startup_trials=startup_trials(spec.num_samples),
                                             seed=0 if seed is None else seed)
        return OptunaSearch(sampler=sampler)


METHOD = Bayes()
