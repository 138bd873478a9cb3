"""The RL family's Experiment: one Tune iteration = one `Algorithm.train()` of our RLlib algorithm."""

from __future__ import annotations

import math
import time
from pathlib import Path

from algorithms.plots import line_plot
from algorithms.rl.envs import env_for_rllib


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
    return (algo.environment(env_for_rllib(config["env"]))
            .training(lr=config["lr"], gamma=config["gamma"], grad_clip=config["grad_clip"], hidden=config["hidden"])
            .env_runners(num_env_runners=config["num_env_runners"],
                         num_envs_per_env_runner=config["num_envs_per_env_runner"])
            .learners(num_gpus_per_learner=_gpus())
            .reporting(min_sample_timesteps_per_iteration=config["env_steps_per_iteration"],
                       min_time_s_per_iteration=0, metrics_num_episodes_for_smoothing=20)
            .debugging(seed=config["seed"]))


def _gpus() -> float:
    import torch

    return 1 if torch.cuda.is_available() else 0


def extract_metrics(result: dict) -> dict:
    """RLlib's nested result -> flat sweep metrics (episode_return_mean keeps RLlib's name)."""
    runners = result.get("env_runners", {})
    metrics = {"env_steps": runners.get("num_env_steps_sampled_lifetime", 0)}
    if not math.isnan(runners.get("episode_return_mean", math.nan)):
        metrics["episode_return_mean"] = runners["episode_return_mean"]
        metrics["episode_len_mean"] = runners.get("episode_len_mean", math.nan)
    learner = result.get("learners", {}).get("default_policy", {})
    for key in ("q_mean", "target_mean", "td_error_mean", "td_loss", "policy_loss", "value_loss", "entropy",
                "value_mean"):
        if key in learner:
            metrics[f"train/{key}"] = float(learner[key])
    return metrics


class RLExperiment:
    def __init__(self, config: dict):
        self.config = config
        self.algo = build_config(config).build_algo()
        self.history: list[dict] = []

    def step(self) -> dict:
        start_steps = self.history[-1]["env_steps"] if self.history else 0
        start = time.perf_counter()
        metrics = extract_metrics(self.algo.train())
        metrics["train/env_steps_per_s"] = (metrics["env_steps"] - start_steps) / (time.perf_counter() - start)
        if self.config["algorithm"] in ("dqn", "double_dqn"):
            module = self.algo.get_module()
            metrics["train/epsilon"] = module.epsilon(int(metrics["env_steps"]))
        if "episode_return_mean" not in metrics and self.history:  # no episode finished this iteration
            metrics["episode_return_mean"] = self.history[-1].get("episode_return_mean", math.nan)
        self.history.append(metrics)
        return metrics

    def describe(self) -> dict:
        return {}

    def save(self, directory: Path) -> None:
        self.algo.save_to_path(str(directory / "algorithm"))

    def restore(self, directory: Path) -> None:
        self.algo.restore_from_path(str(directory / "algorithm"))

    def write_artifacts(self, directory: Path, final: bool) -> None:
        scored = [h for h in self.history if "episode_return_mean" in h]
        if final and scored:
            line_plot([h["env_steps"] for h in scored], {"episode_return_mean": [h["episode_return_mean"]
                                                                                 for h in scored]},
                      directory / "return_curve.png", xlabel="env steps",
                      title=f"{self.config['algorithm']} on {self.config['env']}")

    def close(self) -> None:
        """Stop the Algorithm's EnvRunner and Learner actors."""
        self.algo.stop()
