"""RL maths against hand computations: (Double) DQN targets, n-step returns, GAE, replay, epsilon."""

import numpy as np
import pytest
import torch

from algorithms.rl.modules import linear_schedule
from algorithms.rl.replay import ReplayBuffer
from algorithms.rl.targets import double_dqn_target, dqn_target, gae, n_step_transitions


def test_dqn_and_double_dqn_targets_on_hand_made_q_values():
    rewards = torch.tensor([1.0, 0.5, 2.0])
    discounts = torch.tensor([0.9, 0.9, 0.81])
    terminated = torch.tensor([0.0, 1.0, 0.0])
    q_target = torch.tensor([[1.0, 3.0], [5.0, 2.0], [4.0, -1.0]])
    q_online = torch.tensor([[2.0, 1.0], [0.0, 9.0], [1.0, 7.0]])  # disagrees with the target's argmax
    # DQN: max over the target network
    assert torch.allclose(dqn_target(rewards, discounts, terminated, q_target),
                          torch.tensor([1 + 0.9 * 3, 0.5, 2 + 0.81 * 4]))
    # Double DQN: the online network picks the action (0, 1, 1), the target network scores it
    assert torch.allclose(double_dqn_target(rewards, discounts, terminated, q_online, q_target),
                          torch.tensor([1 + 0.9 * 1, 0.5, 2 + 0.81 * -1]))


def test_double_dqn_target_is_never_above_dqn_target():
    torch.manual_seed(0)
    q_online, q_target = torch.randn(100, 4), torch.randn(100, 4)
    args = (torch.zeros(100), torch.full((100,), 0.99), torch.zeros(100))
    assert (double_dqn_target(*args, q_online, q_target) <= dqn_target(*args, q_target) + 1e-7).all()


def test_n_step_transitions_match_direct_sums():
    gamma, n = 0.9, 3
    obs = np.arange(6, dtype=np.float32)[:, None]  # 5 steps: obs_0..obs_5
    rewards = np.array([1.0, 2.0, 3.0, 4.0, 5.0], dtype=np.float32)
    out = n_step_transitions(obs, np.arange(5), rewards, terminated=True, n=n, gamma=gamma)
    for t in range(5):
        m = min(n, 5 - t)
        assert out["rewards"][t] == pytest.approx(sum(gamma**k * rewards[t + k] for k in range(m)))
        assert out["next_obs"][t, 0] == t + m
        assert out["discounts"][t] == pytest.approx(gamma**m)
        assert out["terminated"][t] == (1.0 if t + m == 5 else 0.0)
    cut = n_step_transitions(obs, np.arange(5), rewards, terminated=False, n=n, gamma=gamma)
    assert cut["terminated"].sum() == 0, "a fragment cut mid-episode bootstraps"
    one = n_step_transitions(obs, np.arange(5), rewards, terminated=True, n=1, gamma=gamma)
    assert np.allclose(one["rewards"], rewards) and np.allclose(one["next_obs"][:, 0], np.arange(1, 6))


def test_gae_matches_a_direct_computation():
    gamma, lam = 0.99, 0.9
    rewards = torch.tensor([1.0, 0.0, 2.0, 1.0, 1.0])
    values = torch.tensor([0.5, 0.4, 0.3, 0.2, 0.1])
    next_values = torch.tensor([0.4, 0.3, 0.9, 0.1, 0.7])
    terminated = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0])
    end = torch.tensor([0.0, 0.0, 1.0, 0.0, 1.0])  # two fragments: steps 0-2 (terminated), 3-4 (cut)
    deltas = [rewards[t] + gamma * (1 - terminated[t]) * next_values[t] - values[t] for t in range(5)]
    expected = []
    for t in range(5):
        stop = 3 if t < 3 else 5
        expected.append(sum((gamma * lam) ** (k - t) * deltas[k] for k in range(t, stop)))
    assert torch.allclose(gae(rewards, values, next_values, terminated, end, gamma, lam), torch.stack(expected))


def test_gae_with_lambda_one_is_the_n_step_return_minus_baseline():
    gamma = 0.9
    rewards, values = torch.tensor([1.0, 1.0, 1.0]), torch.tensor([0.2, 0.1, 0.3])
    next_values = torch.tensor([0.1, 0.3, 2.0])
    end, terminated = torch.tensor([0.0, 0.0, 1.0]), torch.zeros(3)
    returns = [1 + 0.9 * 1 + 0.81 * 1 + 0.729 * 2.0, 1 + 0.9 + 0.81 * 2.0, 1 + 0.9 * 2.0]
    assert torch.allclose(gae(rewards, values, next_values, terminated, end, gamma, 1.0),
                          torch.tensor(returns) - values)


def test_replay_buffer_wraps_around():
    buffer = ReplayBuffer(capacity=4, seed=0)
    for start in (0, 3):
        buffer.add({"obs": np.arange(start, start + 3)[:, None], "actions": np.arange(3), "rewards": np.ones(3),
                    "next_obs": np.zeros((3, 1)), "discounts": np.ones(3), "terminated": np.zeros(3)})
    assert len(buffer) == 4
    assert sorted(buffer.storage["obs"][:, 0].tolist()) == [2, 3, 4, 5], "the oldest two were overwritten"
    assert buffer.sample(10)["obs"].shape == (10, 1)


def test_epsilon_schedule():
    assert linear_schedule(1.0, 0.1, 100, 0) == 1.0
    assert linear_schedule(1.0, 0.1, 100, 50) == pytest.approx(0.55)
    assert linear_schedule(1.0, 0.1, 100, 1000) == pytest.approx(0.1)
