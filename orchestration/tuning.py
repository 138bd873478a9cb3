"""Tune wiring: per-trial resources, schedulers, checkpoint/failure config, new or restored Tuner."""

from __future__ import annotations

from dataclasses import dataclass

from ray import tune

from orchestration.search_space import SweepSpec
from orchestration.storage import Storage
from orchestration.tracking import TrackingContext
from orchestration.trainable import SweepTrainable


@dataclass(frozen=True)
class TuneOptions:
    name: str
    storage: Storage
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
    slots: int = 1  # trials the cluster runs at once (within --max-concurrent): what a race keeps busy


def gpus_per_trial(requested: float | None, cluster_gpus: float, gpu_fraction: float) -> float:
    """An explicit request wins; otherwise the family's fraction of a GPU when the cluster has any."""
    if requested is not None:
        return requested
    return gpu_fraction if cluster_gpus > 0 else 0.0


def build_scheduler(spec: SweepSpec):
    """Tune's trial scheduler, from the sweep's scheduler plug-in (`orchestration.search`)."""
    return spec.search_scheduler.build(spec)


def build_search_alg(spec: SweepSpec, seed: int | None = None, max_concurrent: int | None = None):
    """Tune's search algorithm, from the sweep's method plug-in (`orchestration.search`): None for Tune's
    own generator. `seed` is --search-seed; `max_concurrent` is --max-concurrent."""
    return spec.search_method.search_alg(spec, seed, max_concurrent, shuffle=spec.search_scheduler.shuffles_trials)


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


def tune_space(spec: SweepSpec) -> dict:
    """Tune's param_space: a race's searcher gives every swept value and the seed, so only constants."""
    if spec.race:
        return {k: v["value"] for k, v in spec.parameters.items() if "value" in v}
    return spec.param_space()


def make_trainable(spec: SweepSpec, context: TrackingContext, options: TuneOptions):
    resources = {"cpu": options.cpus_per_trial, "gpu": options.gpus_per_trial}
    if spec.family.extra_bundles is not None:
        resources = TrialResources(spec.family.name, options.cpus_per_trial, options.gpus_per_trial)
    mutations = spec.mutations
    return tune.with_resources(
        tune.with_parameters(SweepTrainable, family_name=spec.family.name, tracking=context, mutations=mutations,
                             cpu_fallback=options.cpu_fallback),
        resources)


def build_tuner(spec: SweepSpec, context: TrackingContext, options: TuneOptions, resume: bool) -> tune.Tuner:
    trainable = make_trainable(spec, context, options)
    if resume:
        tuner = tune.Tuner.restore(options.storage.experiment(options.name), trainable,
                                   resume_unfinished=True, resume_errored=True, param_space=tune_space(spec))
        # Tune restores the first run's callbacks from its pickle (a stall guard with that run's clock
        # and verdict); this run's own take their place
        tuner._local_tuner.get_run_config().callbacks = list(options.callbacks)
        return tuner
    from ray.tune.search.basic_variant import BasicVariantGenerator

    if spec.race:  # the race's searcher gives every swept value and the seed, and keeps its own slots
        from orchestration.search import EXTENSIONS

        search, max_concurrent = EXTENSIONS["race"].searcher(spec, options.slots), None
        num_samples = len(search.candidates) * len(spec.seed_values())  # at most every pair runs
    else:
        search = build_search_alg(spec, options.search_seed, options.max_concurrent)
        # ours carries the limit already (Tune would only warn that it ignores max_concurrent_trials)
        max_concurrent = None if isinstance(search, BasicVariantGenerator) else options.max_concurrent
        num_samples = spec.num_samples
    return tune.Tuner(
        trainable,
        param_space=tune_space(spec),
        tune_config=tune.TuneConfig(
            metric=spec.metric, mode=spec.mode, num_samples=num_samples, search_alg=search,
            scheduler=build_scheduler(spec), max_concurrent_trials=max_concurrent,
            reuse_actors=options.reuse_actors,
            trial_name_creator=TrialNamer(spec.swept_keys), trial_dirname_creator=trial_dirname),
        run_config=tune.RunConfig(
            name=options.name, storage_path=options.storage.uri, verbose=options.verbose,
            failure_config=tune.FailureConfig(max_failures=options.max_failures), callbacks=list(options.callbacks),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None if spec.search_scheduler.keeps_every_checkpoint
                                                    else 2,
                                                    checkpoint_frequency=options.checkpoint_every,
                                                    checkpoint_at_end=True)))


def latest_experiment(storage: Storage, sweep: str) -> str | None:
    """The newest restorable Tune experiment of this sweep in the storage, by name."""
    candidates = [name for name in storage.experiments(sweep) if tune.Tuner.can_restore(storage.experiment(name))]
    return candidates[-1] if candidates else None
