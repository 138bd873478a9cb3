"""Benchmark (not a test): our RLlib algorithms against RLlib's own on CartPole-v1, in one process.

Part `dqn`: our DQN vs RLlib's built-in DQN with matched settings: Adam lr 5e-4, gamma 0.99, [64, 64]
MLP, batch 64, 50k uniform replay, 1000 steps before learning, epsilon 1.0 -> 0.02 over 10k env steps,
Huber loss, grad clip 10, no dueling, 1-step targets, 8 vectorised envs in the local EnvRunner, replay
ratio 16 (trained / sampled steps). The built-in counts target_network_update_freq in env steps, ours in
gradient steps; at 8 gradient steps per 32 env steps, 125 of ours is the built-in's 500.

Part `a2c`: our A2C (the sweep's defaults with lr 2e-3, the best lr of search_spaces/rl.yaml) vs RLlib's
PPO with the settings of RLlib's tuned CartPole example (lr 3e-4, 6 epochs, vf_loss_coeff 0.01, a
shared 32-unit linear trunk), both on 8 vectorised envs in the local EnvRunner.

Part `scaling`: env steps/s of our A2C with 1, 2 and 4 remote EnvRunners (8 envs each), end to end
(sample + learn + weight sync) and sampling alone.

Everything runs with one torch thread (what a Tune trial with 1 CPU gets; also the faster setting for
these small MLPs here). "Solved" is RLlib's smoothed return (mean of the last 20 episodes) >= 475;
each run is capped, and a capped run counts at its cap (so its ratio is a lower bound).

    python bench/rl.py                       # all parts, seeds 0 1 2
    python bench/rl.py --parts dqn --seeds 0
"""

from __future__ import annotations

import argparse
import math
import time

import ray
from common import median, write_result

TARGET = 475.0


def our_dqn(seed: int):
    from algorithms.rl.dqn import DQNConfig

    return (DQNConfig().environment("CartPole-v1")
            .env_runners(num_env_runners=0, num_envs_per_env_runner=8)
            .training(lr=5e-4, gamma=0.99, hidden=[64, 64], train_batch_size_per_learner=64, replay_capacity=50_000,
                      learning_starts=1000, epsilon=(1.0, 0.02, 10_000), td_loss="huber", grad_clip=10.0,
                      rollout_steps=32, updates_per_rollout=8, target_update_freq=125)
            .reporting(min_sample_timesteps_per_iteration=1000, min_time_s_per_iteration=0,
                       metrics_num_episodes_for_smoothing=20)
            .debugging(seed=seed))


def rllib_dqn(seed: int):
    from ray.rllib.algorithms.dqn import DQNConfig

    return (DQNConfig().environment("CartPole-v1")
            .env_runners(num_env_runners=0, num_envs_per_env_runner=8, rollout_fragment_length=4)
            .training(lr=5e-4, gamma=0.99, train_batch_size_per_learner=64,
                      replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": 50_000},
                      num_steps_sampled_before_learning_starts=1000, epsilon=[(0, 1.0), (10_000, 0.02)],
                      td_error_loss_fn="huber", grad_clip=10.0, target_network_update_freq=500,
                      training_intensity=16, double_q=False, dueling=False, n_step=1, num_atoms=1,
                      noisy=False, hiddens=[64])
            .rl_module(model_config={"fcnet_hiddens": [64, 64], "fcnet_activation": "relu"})
            .reporting(min_sample_timesteps_per_iteration=1000, min_time_s_per_iteration=0,
                       metrics_num_episodes_for_smoothing=20)
            .debugging(seed=seed))


def our_a2c(seed: int, num_env_runners: int = 0):
    from algorithms.rl import PARAMS
    from algorithms.rl.experiment import build_config

    config = {name: spec.default for name, spec in PARAMS.items()}
    config.update(algorithm="a2c", lr=2e-3, seed=seed, num_env_runners=num_env_runners, env_steps_per_iteration=1000)
    return build_config(config).learners(num_gpus_per_learner=0)


def rllib_ppo(seed: int):
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    return (PPOConfig().environment("CartPole-v1")
            .env_runners(num_env_runners=0, num_envs_per_env_runner=8)
            .training(lr=3e-4, num_epochs=6, vf_loss_coeff=0.01)
            .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[32], fcnet_activation="linear",
                                                       vf_share_layers=True))
            .reporting(metrics_num_episodes_for_smoothing=20)
            .debugging(seed=seed))


def time_to_target(name: str, config, max_seconds: float, max_steps: int) -> dict:
    """Train until the smoothed return reaches TARGET or a cap; wall time includes nothing but train()."""
    algo = config.build_algo()
    start, steps, best, solved_at = time.perf_counter(), 0, float("-inf"), None
    try:
        while time.perf_counter() - start < max_seconds and steps < max_steps:
            runners = algo.train()["env_runners"]
            steps = int(runners["num_env_steps_sampled_lifetime"])
            ret = runners.get("episode_return_mean", float("nan"))
            best = best if math.isnan(ret) else max(best, ret)
            print(f"  {name}: {steps:>7} steps  {time.perf_counter() - start:7.1f} s  return {ret:6.1f}", flush=True)
            if ret >= TARGET:
                solved_at = {"wall_s": time.perf_counter() - start, "env_steps": steps}
                break
    finally:
        algo.stop()
    wall = time.perf_counter() - start
    run = {"name": name, "solved": solved_at is not None, "wall_s": round(wall, 2), "env_steps": steps,
           "env_steps_per_s": round(steps / wall, 1), "best_return": best}
    # An unsolved run counts at its cap: the ratio against it is then a lower bound.
    run["wall_s_to_475"] = round(solved_at["wall_s"] if solved_at else wall, 2)
    run["env_steps_to_475"] = solved_at["env_steps"] if solved_at else steps
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

    summary = {name: {"solved": f"{sum(r['solved'] for r in runs if r['name'] == name)}/{len(seeds)}",
                      "median_wall_s_to_475": med(name, "wall_s_to_475"),
                      "median_env_steps_to_475": med(name, "env_steps_to_475"),
                      "median_env_steps_per_s": med(name, "env_steps_per_s")}
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
