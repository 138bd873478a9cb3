"""Benchmark (not a test): our DQN against RLlib's built-in DQN on CartPole-v1, in one process.

Matched settings: Adam lr 5e-4, gamma 0.99, [64, 64] MLP, batch 64, 50k uniform replay, 1000 steps
before learning, epsilon 1.0 -> 0.02 over 10k env steps, Huber loss, grad clip 10, no dueling,
1-step targets, 8 vectorised envs in the local EnvRunner, replay ratio 16 (trained / sampled steps).
The built-in counts target_network_update_freq in env steps, ours in gradient steps; at 8 gradient
steps per 32 env steps, 125 of ours is the built-in's 500.

Both run with one torch thread (what a Tune trial with 1 CPU gets; also the faster setting for these
small MLPs on this machine). Reports env steps/s and wall time / env steps to reach a smoothed
return of 475 (mean of the last 20 episodes, RLlib's metric), per algorithm and seed, and the ratios.

    python bench/rl_dqn_vs_rllib.py --seeds 0 --max-minutes 15
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import ray  # noqa: E402

TARGET = 475.0


def ours(seed: int):
    from algorithms.rl.dqn import DQNConfig

    return (DQNConfig().environment("CartPole-v1")
            .env_runners(num_env_runners=0, num_envs_per_env_runner=8)
            .training(lr=5e-4, gamma=0.99, hidden=[64, 64], train_batch_size_per_learner=64, replay_capacity=50_000,
                      learning_starts=1000, epsilon=(1.0, 0.02, 10_000), td_loss="huber", grad_clip=10.0,
                      rollout_steps=32, updates_per_rollout=8, target_update_freq=125)
            .reporting(min_sample_timesteps_per_iteration=1000, min_time_s_per_iteration=0,
                       metrics_num_episodes_for_smoothing=20)
            .debugging(seed=seed))


def builtin(seed: int):
    from ray.rllib.algorithms.dqn import DQNConfig as RLlibDQNConfig

    return (RLlibDQNConfig().environment("CartPole-v1")
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


def run(name: str, config, max_seconds: float, max_steps: int) -> dict:
    algo = config.build_algo()
    start, steps, best = time.perf_counter(), 0, float("-inf")
    solved_at = None
    try:
        while time.perf_counter() - start < max_seconds and steps < max_steps:
            result = algo.train()
            runners = result["env_runners"]
            steps = runners["num_env_steps_sampled_lifetime"]
            ret = runners.get("episode_return_mean", float("nan"))
            best = max(best, ret) if ret == ret else best
            print(f"  {name}: {steps:>7} steps  {time.perf_counter() - start:7.1f} s  return {ret:6.1f}", flush=True)
            if ret >= TARGET:
                solved_at = {"wall_s": time.perf_counter() - start, "env_steps": steps}
                break
    finally:
        algo.stop()
    wall = time.perf_counter() - start
    return {"name": name, "solved": solved_at is not None, "wall_s": wall, "env_steps": steps,
            "env_steps_per_s": steps / wall, "best_return": best, **({"to_475": solved_at} if solved_at else {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--max-minutes", type=float, default=15.0, help="cap per run")
    parser.add_argument("--max-steps", type=int, default=200_000)
    parser.add_argument("--out", default="bench/results/rl_dqn_vs_rllib.json")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch threads for both (1 is fastest for these small MLPs, as in Tune trials)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.torch_threads)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    runs = []
    for seed in args.seeds:
        for name, make in (("ours", ours), ("rllib_builtin", builtin)):
            print(f"{name}, seed {seed}", flush=True)
            runs.append({"seed": seed, **run(name, make(seed), args.max_minutes * 60, args.max_steps)})

    def median(name, key):
        values = [r[key] for r in runs if r["name"] == name]
        return statistics.median(values)

    summary = {"env_steps_per_s": {n: median(n, "env_steps_per_s") for n in ("ours", "rllib_builtin")}}
    summary["throughput_ratio"] = summary["env_steps_per_s"]["ours"] / summary["env_steps_per_s"]["rllib_builtin"]
    solved = {n: [r["to_475"]["wall_s"] for r in runs if r["name"] == n and r["solved"]]
              for n in ("ours", "rllib_builtin")}
    if solved["ours"] and solved["rllib_builtin"]:
        summary["wall_time_ratio_to_475"] = statistics.median(solved["rllib_builtin"]) / statistics.median(
            solved["ours"])
    elif solved["ours"]:
        capped = max(r["wall_s"] for r in runs if r["name"] == "rllib_builtin")
        summary["wall_time_ratio_to_475_lower_bound"] = capped / statistics.median(solved["ours"])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"runs": runs, "summary": summary}, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
