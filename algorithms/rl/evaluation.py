"""Greedy evaluation on environments of its own: M episodes, one per env, all run to their end.

Running exactly one episode per env matters: an EnvRunner asked for M episodes from vectorised envs
returns the first M to finish, which favours short episodes. These envs are built by the
Algorithm's own env creator but never touch its EnvRunners, so evaluation episodes reach neither
the replay buffer nor the training-episode metrics. Each evaluation starts from the same M seeds,
so successive evaluations of one trial (and trials with the same seed) face the same start states.
"""

from __future__ import annotations

import numpy as np
import torch

from ray.rllib.core.columns import Columns

from orchestration.aggregate import MIN_VALUES_FOR_CI, interval


@torch.no_grad()
def greedy_actions(module, observations: np.ndarray) -> np.ndarray:
    """argmax Q for a Q-module, the most likely action of a categorical policy otherwise."""
    device = next(module.parameters()).device
    out = module.forward_inference({Columns.OBS: torch.as_tensor(observations, device=device)})
    if Columns.ACTIONS in out:
        return out[Columns.ACTIONS].cpu().numpy()
    return out[Columns.ACTION_DIST_INPUTS].argmax(dim=-1).cpu().numpy()


def greedy_episodes(policy, envs: list, seeds: list[int], epsilon: float = 0.0,
                    frames: list | None = None) -> list[tuple[float, int]]:
    """(return, length) of one greedy episode per env, the envs stepped together so the policy
    sees one batch per step; with probability `epsilon` an action is uniformly random instead
    (drawn from a generator seeded by `seeds`, so an evaluation repeats exactly). `policy` is an
    RLModule or a function from a batch of observations to actions (a loaded MLflow model's
    predict, say). `frames`, if given, receives the first env's rendered frames."""
    act = policy if not hasattr(policy, "forward_inference") else (lambda obs: greedy_actions(policy, obs))
    rng = np.random.default_rng(seeds)
    observations = [env.reset(seed=seed)[0] for env, seed in zip(envs, seeds)]
    returns, lengths = np.zeros(len(envs)), np.zeros(len(envs), dtype=int)
    running = list(range(len(envs)))
    if frames is not None:
        frames.append(envs[0].render())
    while running:
        actions = act(np.stack([observations[i] for i in running]))
        still = []
        for i, action in zip(running, actions):
            if epsilon and rng.random() < epsilon:
                action = rng.integers(envs[i].action_space.n)
            observations[i], reward, terminated, truncated, _ = envs[i].step(action)
            returns[i] += reward
            lengths[i] += 1
            if frames is not None and i == 0:
                frames.append(envs[0].render())
            if not (terminated or truncated):
                still.append(i)
        running = still
    return list(zip(returns.tolist(), lengths.tolist()))


def summarize(episodes: list[tuple[float, int]]) -> dict[str, float]:
    """Mean return with its spread: a 95% bootstrap CI from MIN_VALUES_FOR_CI episodes on, and
    always the min and max."""
    returns = np.array([r for r, _ in episodes], dtype=float)
    out = {"episode_return_mean": float(returns.mean()), "episode_return_std": float(returns.std()),
           "episode_return_min": float(returns.min()), "episode_return_max": float(returns.max()),
           "episode_len_mean": float(np.mean([n for _, n in episodes])), "num_episodes": len(episodes)}
    if len(returns) >= MIN_VALUES_FOR_CI:
        ci = interval(returns)
        out.update(episode_return_mean_ci_low=ci.low, episode_return_mean_ci_high=ci.high)
    return out
