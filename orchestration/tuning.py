"""Tune wiring: per-trial resources, schedulers, checkpoint/failure config, new or restored Tuner."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from ray import tune

from orchestration.search_space import SweepSpec
from orchestration.tracking import TrackingContext
from orchestration.trainable import SweepTrainable


@dataclass(frozen=True)
class TuneOptions:
    name: str
    storage_path: Path
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    max_failures: int = 0
    checkpoint_every: int = 1
    reuse_actors: bool = True
    verbose: int = 1
    callbacks: tuple = ()  # e.g. the stall guard
    search_seed: int | None = None  # --search-seed: the searcher's draws (None: TPE and orderings use 0)
    cpu_fallback: bool = False  # --cpu-fallback: a trial given a GPU torch cannot see trains on the CPU


def gpus_per_trial(requested: float | None, cluster_gpus: float, gpu_fraction: float) -> float:
    """An explicit request wins; otherwise the family's fraction of a GPU when the cluster has any."""
    if requested is not None:
        return requested
    return gpu_fraction if cluster_gpus > 0 else 0.0


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


def build_pbt(spec: SweepSpec):
    """Tune's PopulationBasedTraining from the `scheduler` block. Synchronous: every trial pauses at each
    `perturbation_interval` iterations until all have reached it, so an exploited checkpoint is never
    older than the steps its new trial has already logged."""
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


def build_scheduler(spec: SweepSpec):
    if spec.scheduler["type"] == "pbt":
        return build_pbt(spec)
    if spec.scheduler["type"] == "asha":
        return tune.schedulers.ASHAScheduler(
            time_attr="training_iteration", max_t=spec.scheduler.get("max_t", spec.budget()),
            grace_period=spec.scheduler.get("grace_period", 1),
            reduction_factor=spec.scheduler.get("reduction_factor", 2))
    return tune.schedulers.FIFOScheduler()


def build_search_alg(spec: SweepSpec, seed: int | None = None, max_concurrent: int | None = None):
    """Under ASHA, grid trials start in a seeded random order instead of Tune's nested-loop order.

    Asynchronous successive halving promotes a trial when it is in the top 1/reduction_factor of the
    trials that reached its rung *so far*, so the first trials to arrive are promoted against little
    competition. In Tune's nested-loop order those trials differ in one parameter only and share the
    first value of every other (all learning rates with the first schedule, say), so a whole slice
    of the grid runs to the end however it scores.

    With replicates (`seeds`), every trial is given explicitly: the configurations crossed with the
    seeds. Under ASHA each (configuration, seed) trial is halved on its own result, so a
    configuration may lose some seeds early; the results table says how many of its seeds finished
    and compares configurations on finished seeds only.

    `seed` (--search-seed) makes the searcher's draws repeatable: TPE's sampler, the random method's
    values, the orders above. Without it, random search draws from Tune's unseeded generator.

    `max_concurrent` (--max-concurrent) goes into our own variant generators: Tune applies
    max_concurrent_trials only to the generator it makes itself or to a Searcher such as TPE."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    draws_seed, limit = seed, max_concurrent or 0  # 0: no limit
    seed = 0 if seed is None else seed
    if spec.method == "bayes":
        return tpe_search(spec, seed)
    asha = spec.scheduler["type"] == "asha"
    if spec.seeds:
        configs = spec.configurations(sample_seed=seed)
        if asha:
            random.Random(seed).shuffle(configs)
        return BasicVariantGenerator(points_to_evaluate=replicate(configs, spec.seed_values()), max_concurrent=limit)
    points = spec.grid_points()
    if not asha or spec.method != "grid" or not points[0]:  # {}: nothing is listed
        return None if draws_seed is None else BasicVariantGenerator(random_state=draws_seed, max_concurrent=limit)
    random.Random(seed).shuffle(points)
    return BasicVariantGenerator(points_to_evaluate=points, max_concurrent=limit)


def startup_trials(num_samples: int) -> int:
    """Random trials before TPE models the results: a fifth of the budget, between 2 and 10 (Optuna's
    default is 10, which would leave a 20-trial sweep half random)."""
    return max(2, min(10, num_samples // 5))


def tpe_search(spec: SweepSpec, seed: int):
    """`method: bayes`: Optuna's tree-structured Parzen estimator, seeded, through Tune's OptunaSearch.
    Tune gives it the sweep's metric and mode, limits it by --max-concurrent (max_concurrent_trials), tells
    it about trials ASHA stops early, and saves its study with the experiment, so --resume continues it."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(n_startup_trials=startup_trials(spec.num_samples), seed=seed)
    return OptunaSearch(sampler=sampler)


def replicate(configs: list[dict], seeds: list[int]) -> list[dict]:
    """Every configuration with every seed, seed by seed: a sweep cut short still has whole seeds of
    every configuration, and seed k gives every configuration the same initialisation and data."""
    return [{**config, "seed": seed} for seed in seeds for config in configs]


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class TrialNamer:
    """Trial (and MLflow child run) names from the swept values: `schedule=cosine,timesteps=100`."""

    def __init__(self, swept_keys: list[str]):
        self.swept_keys = swept_keys

    def __call__(self, trial) -> str:
        parts = [f"{k}={_short(trial.config[k])}" for k in self.swept_keys if k in trial.config]
        return ",".join(parts) or trial.trial_id


def trial_dirname(trial) -> str:
    """Short, unique trial folders (the default repeats every parameter in the path)."""
    return f"trial_{trial.trial_id}"


class TrialResources:
    """Per-trial placement group: the trial's own CPU/GPU bundle plus the family's extra bundles
    (RLlib EnvRunner actors are placed there), computed from each trial's config."""

    def __init__(self, family_name: str, cpus: float, gpus: float):
        self.family_name, self.cpus, self.gpus = family_name, cpus, gpus

    def __call__(self, config: dict):
        from ray.tune.execution.placement_groups import PlacementGroupFactory

        from orchestration.family import load_family

        return PlacementGroupFactory(load_family(self.family_name).bundles(config, self.cpus, self.gpus))


def make_trainable(spec: SweepSpec, context: TrackingContext, options: TuneOptions):
    resources = {"cpu": options.cpus_per_trial, "gpu": options.gpus_per_trial}
    if spec.family.extra_bundles is not None:
        resources = TrialResources(spec.family.name, options.cpus_per_trial, options.gpus_per_trial)
    mutations = tuple(spec.scheduler.get("mutations", ()))
    return tune.with_resources(
        tune.with_parameters(SweepTrainable, family_name=spec.family.name, tracking=context, mutations=mutations,
                             cpu_fallback=options.cpu_fallback),
        resources)


def build_tuner(spec: SweepSpec, context: TrackingContext, options: TuneOptions, resume: bool) -> tune.Tuner:
    trainable = make_trainable(spec, context, options)
    if resume:
        tuner = tune.Tuner.restore(str(options.storage_path / options.name), trainable,
                                   resume_unfinished=True, resume_errored=True, param_space=spec.param_space())
        # Tune restores the first run's callbacks from its pickle (a stall guard with that run's clock
        # and verdict); this run's own take their place
        tuner._local_tuner.get_run_config().callbacks = list(options.callbacks)
        return tuner
    from ray.tune.search.basic_variant import BasicVariantGenerator

    search = build_search_alg(spec, options.search_seed, options.max_concurrent)
    # ours carries the limit already (Tune would only warn that it ignores max_concurrent_trials)
    max_concurrent = None if isinstance(search, BasicVariantGenerator) else options.max_concurrent
    return tune.Tuner(
        trainable,
        param_space=spec.param_space(),
        tune_config=tune.TuneConfig(
            metric=spec.metric, mode=spec.mode, num_samples=spec.num_samples, search_alg=search,
            scheduler=build_scheduler(spec), max_concurrent_trials=max_concurrent,
            reuse_actors=options.reuse_actors,
            trial_name_creator=TrialNamer(spec.swept_keys), trial_dirname_creator=trial_dirname),
        run_config=tune.RunConfig(
            name=options.name, storage_path=str(options.storage_path), verbose=options.verbose,
            failure_config=tune.FailureConfig(max_failures=options.max_failures), callbacks=list(options.callbacks),
            # PBT clones a top trial from a checkpoint it took at a perturbation, which a newer one must not delete
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None if spec.scheduler["type"] == "pbt" else 2,
                                                    checkpoint_frequency=options.checkpoint_every,
                                                    checkpoint_at_end=True)))


def latest_experiment(storage_path: Path, sweep: str) -> str | None:
    """The newest restorable Tune experiment of this sweep under storage_path, by name."""
    if not storage_path.is_dir():
        return None
    candidates = sorted(p.name for p in storage_path.glob(f"{sweep}-*") if tune.Tuner.can_restore(str(p)))
    return candidates[-1] if candidates else None
