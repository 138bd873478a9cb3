"""The RL family's Experiment: one Tune iteration = one `Algorithm.train()` of our RLlib algorithm,
plus a greedy evaluation at the first iteration, every `evaluation_interval` iterations and at the
last one."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from algorithms.plots import line_plot
from algorithms.rl.base import TRAINING_EPISODES
from algorithms.rl.envs import env_for_rllib, is_atari

LEARNER_METRICS = ("q_mean", "target_mean", "td_error_mean", "td_loss", "policy_loss", "value_loss", "entropy",
                   "value_mean")


def build_config(config: dict):
    """Our AlgorithmConfig for a flat sweep config, with RLlib's builder methods."""
    from algorithms.rl.actor_critic import A2CConfig
    from algorithms.rl.dqn import DQNConfig

    name = config["algorithm"]
    if name in ("dqn", "double_dqn"):
        algo = DQNConfig().training(
            double_q=name == "double_dqn", dueling=config["dueling"], n_step=config["n_step"],
            td_loss=config["td_loss"], replay_capacity=config["replay_capacity"],
            learning_starts=config["learning_starts"], rollout_steps=config["rollout_steps"],
            updates_per_rollout=config["updates_per_rollout"], target_update_freq=config["target_update_freq"],
            tau=config["tau"], epsilon=(config["epsilon_start"], config["epsilon_end"], config["epsilon_timesteps"]),
            train_batch_size_per_learner=config["train_batch_size"])
    else:
        reinforce = name == "reinforce"
        algo = A2CConfig().env_runners(rollout_fragment_length=config["rollout_fragment_length"]).training(
            complete_episodes=reinforce, lambda_=1.0 if reinforce else config["gae_lambda"],
            vf_loss_coeff=config["vf_coeff"], entropy_coeff=config["entropy_coeff"],
            shared_trunk=config["shared_trunk"], normalize_advantages=config["normalize_advantages"],
            episodes_per_batch=config["episodes_per_batch"])
    return (algo.environment(env_for_rllib(config["env"]), clip_rewards=True if is_atari(config["env"]) else None)
            .training(lr=config["lr"], gamma=config["gamma"], grad_clip=config["grad_clip"], hidden=config["hidden"])
            .env_runners(num_env_runners=config["num_env_runners"],
                         num_envs_per_env_runner=config["num_envs_per_env_runner"])
            .learners(num_gpus_per_learner=learner_gpus())
            .reporting(min_sample_timesteps_per_iteration=config["env_steps_per_iteration"],
                       min_time_s_per_iteration=0, metrics_num_episodes_for_smoothing=config["episode_return_window"])
            .evaluation(evaluation_duration=config["evaluation_episodes"], evaluation_duration_unit="episodes",
                        evaluation_epsilon=config["evaluation_epsilon"])
            # the sweep records system metrics itself; RLlib's own monitor only warns that GPUtil is missing
            .debugging(seed=config["seed"], log_sys_usage=False))


def learner_gpus() -> float:
    """`num_gpus_per_learner` for RLlib's local Learner, which trains in the trial's own process: the
    GPU share Ray gave the trial (0.5 by default, so two trials share a card), when torch can use it;
    outside Ray (tests, benchmarks), the whole visible GPU."""
    import ray
    import torch

    from algorithms.device import ray_gpu_share

    if not torch.cuda.is_available():
        return 0
    in_a_ray_actor = ray.is_initialized() and ray.get_runtime_context().get_actor_id() is not None
    return ray_gpu_share() if in_a_ray_actor else 1


def extract_metrics(result: dict) -> dict:
    """RLlib's nested result -> flat sweep metrics. `episode_return_mean` is our own window over the
    last N training episodes (NaN until one has finished), not RLlib's `env_runners` value."""
    episodes = result.get(TRAINING_EPISODES, {})
    metrics = {"env_steps": result.get("env_runners", {}).get("num_env_steps_sampled_lifetime", 0),
               "episode_return_mean": episodes.get("episode_return_mean", math.nan),
               "episode_len_mean": episodes.get("episode_len_mean", math.nan),
               "train/episodes_in_window": episodes.get("episodes_in_window", 0),
               "train/episodes_completed": episodes.get("num_episodes_lifetime", 0)}
    learner = result.get("learners", {}).get("default_policy", {})
    metrics.update({f"train/{key}": float(learner[key]) for key in LEARNER_METRICS if key in learner})
    return metrics


def return_auc(history: list[dict]) -> float:
    """The area under the greedy-return curve per env step so far: each evaluation's mean return weighted
    by the env steps since the one before it (the first from step 0), over all env steps to the last.
    How fast and how stably a configuration learns, where the final return alone ties everything that
    solves the env (CartPole: 500) by the end."""
    points = [(h["env_steps"], h["eval/episode_return_mean"]) for h in history if "eval/episode_return_mean" in h]
    area, previous = 0.0, 0.0
    for steps, value in points:
        area += value * (steps - previous)
        previous = steps
    return area / previous if previous else points[-1][1]


class RLExperiment:
    def __init__(self, config: dict):
        self.config = config
        self.algo = build_config(config).build_algo()
        self.history: list[dict] = []

    @property
    def device(self):
        """Where the Learner trains (EnvRunners sample on CPUs)."""
        return self.algo.learner_group._learner.device

    def step(self) -> dict:
        iteration = len(self.history) + 1
        start_steps = self.history[-1]["env_steps"] if self.history else 0
        start = time.perf_counter()
        metrics = extract_metrics(self.algo.train())
        metrics["train/env_steps_per_s"] = (metrics["env_steps"] - start_steps) / (time.perf_counter() - start)
        if self.config["algorithm"] in ("dqn", "double_dqn"):
            metrics["train/epsilon"] = self.algo.get_module().epsilon(int(metrics["env_steps"]))
        if iteration == 1 or iteration % self.config["evaluation_interval"] == 0 or \
                iteration == self.config["iterations"]:
            metrics.update({f"eval/{key}": value for key, value in self.algo.evaluate().items()})
            metrics["eval/episode_return_auc"] = return_auc([*self.history, metrics])
        self.history.append(metrics)
        return metrics

    def describe(self) -> dict:
        return {}

    def hyperparameters(self) -> dict:
        from algorithms.rl import live

        return live.read(self.algo, live.LEARNER_SETTINGS + live.MODULE_SETTINGS)

    def apply_hyperparameters(self, values: dict) -> None:
        """PBT: the Learners' lr, entropy coefficient and target-network settings and the EnvRunners'
        final exploration rate, in place; keys the algorithm does not use are ignored by it."""
        from algorithms.rl import live

        live.apply(self.algo, values)

    def save(self, directory: Path) -> None:
        """RLlib's checkpoint (with our replay buffer, learner counters and episode window) and the
        metric history, so a restored trial continues its curves and throughput figures."""
        self.algo.save_to_path(str(directory / "algorithm"))
        (directory / "history.json").write_text(json.dumps(self.history))

    def restore(self, directory: Path) -> None:
        self.algo.restore_from_path(str(directory / "algorithm"))
        history = directory / "history.json"
        self.history = json.loads(history.read_text()) if history.exists() else []

    def write_artifacts(self, directory: Path, final: bool) -> None:
        if not final or not self.history:
            return
        evaluated = [h for h in self.history if "eval/episode_return_mean" in h]
        curves = {f"training: mean of the last {self.config['episode_return_window']} episodes":
                  [h["episode_return_mean"] for h in self.history],
                  f"greedy evaluation ({self.config['evaluation_episodes']} episodes)":
                  ([h["env_steps"] for h in evaluated], [h["eval/episode_return_mean"] for h in evaluated])}
        line_plot([h["env_steps"] for h in self.history], curves, directory / "return_curve.png",
                  xlabel="env steps", title=f"{self.config['algorithm']} on {self.config['env']}")

    def export_model(self, directory: Path):
        from algorithms.rl.serving import export

        module = self.algo.get_module()
        return export(module, module.observation_space)

    def close(self) -> None:
        """Stop the Algorithm's EnvRunner and Learner actors."""
        self.algo.stop()
