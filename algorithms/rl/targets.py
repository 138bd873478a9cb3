"""Bootstrapped targets shared by the RL algorithms: (Double) DQN, n-step returns, GAE."""

from __future__ import annotations

import numpy as np
import torch
from scipy.signal import lfilter


def dqn_target(rewards: torch.Tensor, discounts: torch.Tensor, terminated: torch.Tensor,
               q_next_target: torch.Tensor) -> torch.Tensor:
    """r + gamma^n (1 - done) max_a Q_target(s', a)  (Mnih et al. 2015)."""
    return rewards + discounts * (1.0 - terminated) * q_next_target.max(dim=1).values


def double_dqn_target(rewards: torch.Tensor, discounts: torch.Tensor, terminated: torch.Tensor,
                      q_next_online: torch.Tensor, q_next_target: torch.Tensor) -> torch.Tensor:
    """r + gamma^n (1 - done) Q_target(s', argmax_a Q_online(s', a))  (van Hasselt et al. 2016)."""
    best = q_next_online.argmax(dim=1, keepdim=True)
    return rewards + discounts * (1.0 - terminated) * q_next_target.gather(1, best).squeeze(1)


def clip_rewards(rewards: np.ndarray, clip: bool | float | None) -> np.ndarray:
    """RLlib's `clip_rewards` setting: True clips to the sign (Atari), a number c to [-c, c]."""
    if clip is True:
        return np.sign(rewards)
    return np.clip(rewards, -clip, clip) if clip else rewards


def n_step_returns(rewards: np.ndarray, n: int, gamma: float, count: int) -> tuple[np.ndarray, np.ndarray]:
    """n-step returns of the first `count` steps of a stretch of one episode's rewards.

    Step t gets R_t = sum_{k<m} gamma^k r_{t+k} with window m = min(n, len(rewards) - t): a full
    window where the stretch holds n more rewards, a shorter one at its end. Returns (R, m).
    """
    length = len(rewards)
    t = np.arange(count)
    windows = np.minimum(n, length - t)
    returns = np.zeros(count, dtype=np.float32)
    for k in range(n):
        inside = k < windows
        returns[inside] += np.float32(gamma**k) * rewards[t[inside] + k]
    return returns, windows


def discounted_cumsum(values: np.ndarray, factor: float) -> np.ndarray:
    """y_t = x_t + factor * y_{t+1}, from the end backwards."""
    return lfilter([1.0], [1.0, -factor], values[::-1])[::-1].astype(np.float32)


def gae(rewards: np.ndarray, values: np.ndarray, last_value: float, gamma: float, lam: float) -> np.ndarray:
    """Generalised advantage estimates (Schulman et al. 2016) over one fragment of one episode.

    values are V(s_0..s_{L-1}); last_value is V(s_L), or 0 where the episode terminated at s_L
    (a truncated or cut fragment bootstraps from it). delta_t = r_t + gamma V(s_{t+1}) - V(s_t),
    A_t = delta_t + gamma lam A_{t+1}; lam = 1 gives the n-step return minus the baseline.
    """
    next_values = np.append(values[1:], np.float32(last_value))
    return discounted_cumsum(rewards + gamma * next_values - values, gamma * lam)
