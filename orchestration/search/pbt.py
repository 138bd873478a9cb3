"""`scheduler: {type: pbt, mutations, perturbation_interval, ...}`: population-based training (Tune's
PopulationBasedTraining, synchronous). Its trials exchange weights, so they are not replicates: the answer
is the best trial and the schedule it followed."""

from __future__ import annotations

from orchestration.errors import SweepError, quote
from orchestration.search.base import Scheduler


class KeepInBounds:
    """PBT's explore step multiplies continuous values by its factors without regard to their range;
    this puts each mutated value back inside the distribution the search space declared (an integer
    parameter rounded), so a perturbed momentum never reaches 1."""

    def __init__(self, bounds: dict[str, tuple[float, float, bool]]):
        self.bounds = bounds  # {key: (min, max, is_int)}

    def __call__(self, config: dict) -> dict:
        for key, (low, high, is_int) in self.bounds.items():
            value = min(max(config[key], low), high)
            config[key] = int(round(value)) if is_int else float(value)
        return config


class Pbt(Scheduler):
    name = "pbt"
    keys = frozenset({"perturbation_interval", "quantile_fraction", "resample_probability", "perturbation_factors",
                      "mutations"})
    keeps_every_checkpoint = True  # PBT clones a top trial from a checkpoint it took at a perturbation

    def check(self, block, family, parameters, method, seeds, where) -> None:
        """Which parameters may change during training is the family's call; each needs declared values
        or a distribution to resample from (and to clip perturbations to)."""
        mutations = block.get("mutations")
        if not isinstance(mutations, list) or not mutations or not all(isinstance(k, str) for k in mutations):
            raise SweepError(f"{where}.mutations: must be a non-empty list of parameter names")
        for key in mutations:
            if key not in family.params:
                raise SweepError(f"{where}.mutations: unknown parameter {key!r}")
            if key not in family.mutable:
                allowed = ", ".join(family.mutable) or "none"
                raise SweepError(f"{where}.mutations: {key} cannot change during training ({family.name} can "
                                 f"change: {allowed})")
            if "value" in parameters.get(key, {"value": None}):
                raise SweepError(f"{where}.mutations: {key} needs 'values' or a 'distribution' under parameters, to "
                                 "start the population from and to resample")
        if seeds:
            raise SweepError(f"{where}: pbt: its trials exchange weights, so they are not replicates; drop `seeds`")
        if method.chooses_from_results:
            raise SweepError(f"{where}: pbt: use method grid or random for the initial population, not {method.name}")
        interval = block.get("perturbation_interval", 1)
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
            raise SweepError(f"{where}.perturbation_interval: must be an integer >= 1 (iterations), "
                             f"got {quote(interval)}")
        fraction = block.get("quantile_fraction", 0.25)
        if not isinstance(fraction, (int, float)) or not 0 < fraction <= 0.5:
            raise SweepError(f"{where}.quantile_fraction: must be in (0, 0.5], got {quote(fraction)}")
        probability = block.get("resample_probability", 0.25)
        if not isinstance(probability, (int, float)) or not 0 <= probability <= 1:
            raise SweepError(f"{where}.resample_probability: must be in [0, 1], got {quote(probability)}")
        factors = block.get("perturbation_factors", [1.2, 0.8])
        if (not isinstance(factors, list) or len(factors) < 2
                or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and f > 0 for f in factors)):
            raise SweepError(f"{where}.perturbation_factors: must be a list of at least two numbers > 0, "
                             f"got {quote(factors)}")

    def mutations(self, block: dict) -> tuple[str, ...]:
        return tuple(block.get("mutations", ()))

    def build(self, spec):
        """Synchronous: every trial pauses at each `perturbation_interval` iterations until all have reached
        it, so an exploited checkpoint is never older than the steps its new trial has already logged."""
        from ray.tune.schedulers import PopulationBasedTraining

        settings, mutations, bounds = spec.scheduler, {}, {}
        space = spec.param_space()
        for key in settings["mutations"]:
            entry = spec.parameters[key]
            if "values" in entry:
                mutations[key] = list(entry["values"])
            else:
                mutations[key] = space[key]
                bounds[key] = (entry["min"], entry["max"], entry["distribution"] == "int_uniform")
        return PopulationBasedTraining(
            time_attr="training_iteration", perturbation_interval=settings.get("perturbation_interval", 1),
            hyperparam_mutations=mutations, quantile_fraction=settings.get("quantile_fraction", 0.25),
            resample_probability=settings.get("resample_probability", 0.25),
            perturbation_factors=tuple(settings.get("perturbation_factors", (1.2, 0.8))),
            custom_explore_fn=KeepInBounds(bounds), synch=True)

    def answer(self, best, view) -> list[str]:
        """Under PBT the answer is a trial and the schedule it followed: its swept values are only where it
        started, and its population exchanged weights, so there are no replicates to give an interval."""
        run = best.best_run
        ended = ", ".join(f"{k}={v:.4g}" for k, v in sorted(run.final_hyperparameters.items()))
        lines = [f"best trial: {run.name}: {view.metric_label} {run.final:.4g} (MLflow run {run.run_id})",
                 f"  it started at {best.label()}" + (f" and ended at {ended}" if ended else "")
                 + "; its hp/ metrics and the parent's results/pbt_lineage.csv hold the schedule"]
        if run.own_interval is not None:
            lines.append(f"  its own evaluation interval: [{run.own_interval[0]:.4g}, {run.own_interval[1]:.4g}] "
                         "(evaluation noise only)")
        lines.append("a PBT population's trials share weights, so they are not replicates: to know how sure this is, "
                     "re-run the sweep with other --search-seed values and compare the best scores")
        return lines


SCHEDULER = Pbt()
