"""Bootstrapped targets shared by the RL algorithms: (Double) DQN, n-step returns, GAE."""

from __future__ import annotations

import numpy as np
import torch


def dqn_target(rewards: torch.Tensor, discounts: torch.Tensor, terminated: torch.Tensor,
               q_next_target: torch.Tensor) -> torch.Tensor:
    """r + gamma^n (1 - done) max_a Q_target(s', a)  (Mnih et al. 2015)."""
    return rewards + discounts * (1.0 - terminated) * q_next_target.max(dim=1).values


def double_dqn_target(rewards: torch.Tensor, discounts: torch.Tensor, terminated: torch.Tensor,
                      q_next_online: torch.Tensor, q_next_target: torch.Tensor) -> torch.Tensor:
    """r + gamma^n (1 - done) Q_target(s', argmax_a Q_online(s', a))  (van Hasselt et al. 2016)."""
    best = q_next_online.argmax(dim=1, keepdim=True)
    return rewards + discounts * (1.0 - terminated) * q_next_target.gather(1, best).squeeze(1)


def n_step_transitions(observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray, terminated: bool,
                       n: int, gamma: float) -> dict[str, np.ndarray]:
    """All n-step transitions of one episode fragment (obs has one more entry than actions).

    Transition t: R = sum_{k<m} gamma^k r_{t+k}, next obs = obs_{t+m}, discount = gamma^m, where
    m = min(n, steps left in the fragment); `terminated` is 1 only when the window reaches the
    fragment's terminal step. A fragment cut mid-episode bootstraps early, from a shorter window.
    """
    length = len(actions)
    returns = np.zeros(length, dtype=np.float32)
    next_index = np.zeros(length, dtype=np.int64)
    discounts = np.zeros(length, dtype=np.float32)
    done = np.zeros(length, dtype=np.float32)
    for t in range(length):
        m = min(n, length - t)
        returns[t] = sum(gamma**k * rewards[t + k] for k in range(m))
        next_index[t] = t + m
        discounts[t] = gamma**m
        done[t] = float(terminated and t + m == length)
    return {"obs": observations[:length], "actions": actions, "rewards": returns,
            "next_obs": observations[next_index], "discounts": discounts, "terminated": done}


def gae(rewards: torch.Tensor, values: torch.Tensor, next_values: torch.Tensor, terminated: torch.Tensor,
        segment_end: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """Generalised advantage estimates (Schulman et al. 2016) over concatenated fragments.

    delta_t = r_t + gamma (1 - terminated_t) V(s_{t+1}) - V(s_t);
    A_t = delta_t + gamma lam (1 - end_t) A_{t+1}, where end_t marks the last step of a fragment
    (terminated, truncated or cut). lam = 1 gives n-step returns minus the baseline.
    """
    deltas = rewards + gamma * (1.0 - terminated) * next_values - values
    advantages = torch.zeros_like(deltas)
    running = torch.zeros((), dtype=deltas.dtype, device=deltas.device)
    for t in range(len(deltas) - 1, -1, -1):
        running = deltas[t] + gamma * lam * (1.0 - segment_end[t]) * running
        advantages[t] = running
    return advantages
