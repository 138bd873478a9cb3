"""Benchmark (not a test): our RLlib algorithms against RLlib's own on CartPole-v1, in one process.

Part `dqn`: our DQN vs RLlib's built-in DQN with matched settings: Adam lr 5e-4, gamma 0.99, the same
Q-network ([64, 64] ReLU MLP and a linear output, 4,610 parameters on CartPole), batch 64, 50k uniform
replay, 1000 steps before learning, epsilon 1.0 -> 0.02 over 10k env steps, Huber loss, grad clip 10,
no dueling, 1-step targets, 8 vectorised envs in the local EnvRunner, replay ratio 16 (trained /
sampled steps). The built-in counts target_network_update_freq in env steps, ours in gradient steps;
at 8 gradient steps per 32 env steps, 125 of ours is the built-in's 500.

Part `a2c`: our A2C (the sweep's defaults with lr 2e-3, the best lr of search_spaces/rl.yaml) vs RLlib's
PPO with the settings of RLlib's tuned CartPole example (lr 3e-4, 6 epochs, vf_loss_coeff 0.01, a
shared 32-unit linear trunk), both on 8 vectorised envs in the local EnvRunner.

Part `scaling`: env steps/s of our A2C with 1, 2 and 4 remote EnvRunners (8 envs each), end to end
(sample + learn + weight sync) and sampling alone.

Everything runs with one torch thread (what a Tune trial with 1 CPU gets; also the faster setting for
these small MLPs here). "Solved" is judged the same way for every algorithm, from an env wrapper that
records every finished training episode: the first episode end at which the mean return of the last
20 episodes reaches 475. Wall time and env steps are read at that episode end (wall time from the
first `train()`, env steps summed over all envs). RLlib's own `env_runners/episode_return_mean` is a
per-iteration mean of means (see algorithms/rl/episodes.py); each run also records the env steps at
which it first read >= 475, to show how early it would have declared victory. Each run is capped, and
a capped run counts at its cap (so a ratio against it is a bound).

    python bench/rl.py                       # all parts, seeds 0 1 2
    python bench/rl.py --parts dqn --seeds 0
"""

from __future__ import annotations

import argparse
import math
import time

import gymnasium as gym
import ray
from common import median, our_params, write_result
from episode_clock import EpisodeClock, first_solved
from ray.tune import register_env

TARGET = 475.0
WINDOW = 20
ENV = "timed-CartPole-v1"

register_env(ENV, lambda ctx: EpisodeClock(gym.make("CartPole-v1")))


def our_dqn(seed: int):
    from algorithms.rl.dqn import DQNConfig

    return (DQNConfig().environment(ENV)
            .env_runners(num_env_runners=0, num_envs_per_env_runner=8)
            .training(lr=5e-4, gamma=0.99, hidden=[64, 64], train_batch_size_per_learner=64, replay_capacity=50_000,
                      learning_starts=1000, epsilon=(1.0, 0.02, 10_000), td_loss="huber", grad_clip=10.0,
                      rollout_steps=32, updates_per_rollout=8, target_update_freq=125)
            .reporting(min_sample_timesteps_per_iteration=1000, min_time_s_per_iteration=0,
                       metrics_num_episodes_for_smoothing=20)
            .debugging(seed=seed))


def rllib_dqn(seed: int):
    from ray.rllib.algorithms.dqn import DQNConfig

    return (DQNConfig().environment(ENV)
            .env_runners(num_env_runners=0, num_envs_per_env_runner=8, rollout_fragment_length=4)
            .training(lr=5e-4, gamma=0.99, train_batch_size_per_learner=64,
                      replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": 50_000},
                      num_steps_sampled_before_learning_starts=1000, epsilon=[(0, 1.0), (10_000, 0.02)],
                      td_error_loss_fn="huber", grad_clip=10.0, target_network_update_freq=500,
                      training_intensity=16, double_q=False, dueling=False, n_step=1, num_atoms=1,
                      noisy=False, hiddens=[])  # no extra head layer: the same network as ours
            .rl_module(model_config={"fcnet_hiddens": [64, 64], "fcnet_activation": "relu"})
            .reporting(min_sample_timesteps_per_iteration=1000, min_time_s_per_iteration=0,
                       metrics_num_episodes_for_smoothing=20)
            .debugging(seed=seed))


def our_a2c(seed: int, num_env_runners: int = 0):
    from algorithms.rl.experiment import build_config

    config = our_params("a2c")
    config.update(seed=seed, num_env_runners=num_env_runners, env_steps_per_iteration=1000,
                  num_envs_per_env_runner=8)  # as RLlib's PPO here samples
    return build_config(config).environment(ENV).learners(num_gpus_per_learner=0)


def rllib_ppo(seed: int):
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    return (PPOConfig().environment(ENV)
            .env_runners(num_env_runners=0, num_envs_per_env_runner=8)
            .training(lr=3e-4, num_epochs=6, vf_loss_coeff=0.01)
            .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[32], fcnet_activation="linear",
                                                       vf_share_layers=True))
            .reporting(metrics_num_episodes_for_smoothing=20)
            .debugging(seed=seed))


def time_to_target(name: str, config, max_seconds: float, max_steps: int) -> dict:
    """Train until the recorded episodes solve CartPole or a cap; wall time includes nothing but train()."""
    algo = config.build_algo()
    EpisodeClock.clear()
    start, solved, rllib_claimed = time.perf_counter(), None, None
    try:
        while time.perf_counter() - start < max_seconds and EpisodeClock.steps < max_steps and solved is None:
            runners = algo.train()["env_runners"]
            reported = runners.get("episode_return_mean", math.nan)
            if rllib_claimed is None and reported >= TARGET:
                rllib_claimed = EpisodeClock.steps
            solved = first_solved(EpisodeClock.episodes, TARGET)
            returns = [r for _, _, r in EpisodeClock.episodes[-WINDOW:]]
            print(f"  {name}: {EpisodeClock.steps:>7} steps  {time.perf_counter() - start:7.1f} s  "
                  f"last {WINDOW}: {sum(returns) / max(1, len(returns)):6.1f}  RLlib's: {reported:6.1f}", flush=True)
    finally:
        algo.stop()
    wall, steps = time.perf_counter() - start, EpisodeClock.steps
    run = {"name": name, "solved": solved is not None, "wall_s": round(wall, 2), "env_steps": steps,
           "env_steps_per_s": round(steps / wall, 1), "episodes": len(EpisodeClock.episodes),
           "rllib_metric_claimed_475_at_env_steps": rllib_claimed}
    # An unsolved run counts at its cap: the ratio against it is then a bound.
    run["wall_s_to_475"] = round(solved[0] - start, 2) if solved else round(wall, 2)
    run["env_steps_to_475"] = solved[1] if solved else steps
    return run


def compare(ours_name: str, theirs_name: str, makers: dict, seeds: list[int], max_seconds: float,
            max_steps: int) -> dict:
    runs = []
    for seed in seeds:
        for name in (ours_name, theirs_name):
            print(f"{name}, seed {seed}", flush=True)
            runs.append({"seed": seed, **time_to_target(name, makers[name](seed), max_seconds, max_steps)})

    def med(name, key):
        return median([r[key] for r in runs if r["name"] == name])

    def spread(name, key):
        values = [r[key] for r in runs if r["name"] == name]
        return [min(values), max(values)]

    summary = {name: {"solved": f"{sum(r['solved'] for r in runs if r['name'] == name)}/{len(seeds)}",
                      "seeds": len(seeds),
                      "median_wall_s_to_475": med(name, "wall_s_to_475"),
                      "range_wall_s_to_475": spread(name, "wall_s_to_475"),
                      "median_env_steps_to_475": med(name, "env_steps_to_475"),
                      "range_env_steps_to_475": spread(name, "env_steps_to_475"),
                      "median_env_steps_per_s": med(name, "env_steps_per_s"),
                      "range_env_steps_per_s": spread(name, "env_steps_per_s")}
               for name in (ours_name, theirs_name)}
    ours, theirs = summary[ours_name], summary[theirs_name]
    summary["wall_time_ratio"] = theirs["median_wall_s_to_475"] / ours["median_wall_s_to_475"]
    summary["throughput_ratio"] = ours["median_env_steps_per_s"] / theirs["median_env_steps_per_s"]
    summary["sample_efficiency_ratio"] = theirs["median_env_steps_to_475"] / ours["median_env_steps_to_475"]
    return {"runs": runs, "summary": summary}


def rollout_scaling(runner_counts: list[int], seconds: float) -> list[dict]:
    """Env steps/s of our A2C with N remote EnvRunners: whole training_step, and sample() alone."""
    rows, per_runner = [], 2000
    for n in runner_counts:
        algo = our_a2c(seed=0, num_env_runners=n).build_algo()
        try:
            algo.train()  # warm-up: actors started, first weights synced
            steps0, start = algo.metrics.peek(("env_runners", "num_env_steps_sampled_lifetime")), time.perf_counter()
            while time.perf_counter() - start < seconds:
                result = algo.train()
            elapsed = time.perf_counter() - start
            trained = (result["env_runners"]["num_env_steps_sampled_lifetime"] - steps0) / elapsed
            start = time.perf_counter()
            sampled = 0
            while time.perf_counter() - start < seconds:
                batches = algo.env_runner_group.foreach_env_runner(
                    lambda runner, k=per_runner: sum(len(e) for e in runner.sample(num_timesteps=k)),
                    local_env_runner=False)
                sampled += sum(batches)
            sample_only = sampled / (time.perf_counter() - start)
        finally:
            algo.stop()
        rows.append({"env_runners": n, "envs_per_runner": 8, "train_env_steps_per_s": round(trained, 1),
                     "sample_env_steps_per_s": round(sample_only, 1)})
        print(f"  {n} EnvRunners: {trained:8.1f} env steps/s training, {sample_only:8.1f} sampling only", flush=True)
    base = rows[0]
    for row in rows:
        row["train_speedup"] = round(row["train_env_steps_per_s"] / base["train_env_steps_per_s"], 2)
        row["sample_speedup"] = round(row["sample_env_steps_per_s"] / base["sample_env_steps_per_s"], 2)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=("dqn", "a2c", "scaling"), default=["dqn", "a2c", "scaling"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-minutes", type=float, default=8.0, help="cap per run")
    parser.add_argument("--max-steps", type=int, default=400_000, help="cap per run")
    parser.add_argument("--scaling-seconds", type=float, default=20.0)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    ray.init(num_cpus=5, include_dashboard=False, log_to_driver=False)  # 4 EnvRunners + the driver
    cap = args.max_minutes * 60
    if "dqn" in args.parts:
        write_result("rl_dqn", compare("ours_dqn", "rllib_dqn", {"ours_dqn": our_dqn, "rllib_dqn": rllib_dqn},
                                       args.seeds, cap, args.max_steps))
    if "a2c" in args.parts:
        write_result("rl_a2c", compare("ours_a2c", "rllib_ppo", {"ours_a2c": our_a2c, "rllib_ppo": rllib_ppo},
                                       args.seeds, cap, args.max_steps))
    if "scaling" in args.parts:
        write_result("rl_scaling", {"rows": rollout_scaling([1, 2, 4], args.scaling_seconds)})


if __name__ == "__main__":
    main()
