"""Settings that population-based training changes while our RLlib algorithms train.

An RLlib Learner reads its settings from a frozen AlgorithmConfig, and its lr scheduler sets every
optimiser's lr from that config after each update, so assigning a new lr to the optimiser alone would
be undone at the next step. `LiveSettings` keeps the changed values on the Learner instead: the loss
and the target-network update read `self.setting(name)`, and a new lr replaces the scheduler.
"""

from __future__ import annotations

LEARNER_SETTINGS = ("lr", "entropy_coeff", "tau", "target_update_freq")  # what a Learner can change in place
MODULE_SETTINGS = ("epsilon_end",)  # the exploration schedule, in each RLModule's model_config


class LiveSettings:
    """Mixin for a TorchLearner (listed before it in the bases)."""

    def setting(self, name: str):
        """The value in force: a PBT change if there was one, else the config's."""
        return getattr(self, "_live_settings", {}).get(name, getattr(self.config, name))

    def apply_settings(self, values: dict) -> None:
        from ray.rllib.utils.schedules.scheduler import Scheduler

        self._live_settings = {**getattr(self, "_live_settings", {}), **values}
        if "lr" in values:
            for module_id in self.module.keys():
                for _, optimizer in self.get_optimizers_for_module(module_id):
                    self._optimizer_lr_schedules[optimizer] = Scheduler(values["lr"], framework="torch",
                                                                        device=self._device)
                    self._set_optimizer_lr(optimizer, values["lr"])

    def current_settings(self, names: tuple[str, ...]) -> dict:
        """The values in force, the lr as the optimiser holds it (what the last update used)."""
        out = {name: self.setting(name) for name in names if name != "lr" and hasattr(self.config, name)}
        if "lr" in names:
            module_id = next(iter(self.module.keys()))
            out["lr"] = self.get_optimizers_for_module(module_id)[0][1].param_groups[0]["lr"]
        return out


def apply_to_learners(algo, values: dict) -> None:
    """Every Learner of the Algorithm (local, or remote actors) takes the new values."""
    algo.learner_group.foreach_learner(lambda learner: learner.apply_settings(values))


def apply_to_modules(algo, values: dict) -> None:
    """The exploration schedule's values, on every EnvRunner's module (weight syncs carry weights only)."""
    def update(runner) -> None:
        config = runner.module.model_config
        config.update({name: value for name, value in values.items() if name in config})

    algo.env_runner_group.foreach_env_runner(update)


def apply(algo, values: dict) -> None:
    learner = {k: v for k, v in values.items() if k in LEARNER_SETTINGS}
    module = {k: v for k, v in values.items() if k in MODULE_SETTINGS}
    if learner:
        apply_to_learners(algo, learner)
    if module:
        apply_to_modules(algo, module)


def read(algo, names: tuple[str, ...]) -> dict:
    """The values in force: the Learner's, and the exploration schedule of the local EnvRunner's module."""
    results = algo.learner_group.foreach_learner(
        lambda learner: learner.current_settings(tuple(n for n in names if n in LEARNER_SETTINGS)))
    out = next(iter(results)).get()
    model_config = algo.get_module().model_config
    out.update({name: model_config[name] for name in names if name in MODULE_SETTINGS and name in model_config})
    return out
