"""RL maths against hand computations: (Double) DQN targets, n-step returns across fragments, GAE,
replay storage, the training-episode window, epsilon."""

import pickle

import numpy as np
import pytest
import torch

from algorithms.rl.episodes import EpisodeWindow
from algorithms.rl.modules import linear_schedule
from algorithms.rl.replay import Fragment, ReplayBuffer
from algorithms.rl.targets import clip_rewards, double_dqn_target, dqn_target, gae, n_step_returns


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


def test_n_step_returns_match_direct_sums():
    gamma, n = 0.9, 3
    rewards = np.array([1.0, 2.0, 3.0, 4.0, 5.0], dtype=np.float32)
    returns, windows = n_step_returns(rewards, n, gamma, count=5)
    for t in range(5):
        m = min(n, 5 - t)
        assert windows[t] == m
        assert returns[t] == pytest.approx(sum(gamma**k * rewards[t + k] for k in range(m)))
    first_two, _ = n_step_returns(rewards, n, gamma, count=2)
    assert np.allclose(first_two, returns[:2])


def gae_by_definition(rewards, values, last_value, gamma, lam):
    """A_t = sum_k (gamma lam)^k delta_{t+k}, written out."""
    next_values = list(values[1:]) + [last_value]
    deltas = [rewards[t] + gamma * next_values[t] - values[t] for t in range(len(rewards))]
    return [sum((gamma * lam) ** (k - t) * deltas[k] for k in range(t, len(deltas))) for t in range(len(deltas))]


def test_gae_matches_its_definition():
    rewards = np.array([1.0, 0.0, 2.0, 1.0, 1.0], dtype=np.float32)
    values = np.array([0.5, 0.4, 0.3, 0.2, 0.1], dtype=np.float32)
    for last_value in (0.0, 0.7):  # terminated / bootstrapped from V(s_L)
        assert np.allclose(gae(rewards, values, last_value, 0.99, 0.9),
                           gae_by_definition(rewards, values, last_value, 0.99, 0.9), atol=1e-5)


def test_gae_with_lambda_one_is_the_n_step_return_minus_baseline():
    rewards, values = np.ones(3, dtype=np.float32), np.array([0.2, 0.1, 0.3], dtype=np.float32)
    returns = np.array([1 + 0.9 + 0.81 + 0.729 * 2.0, 1 + 0.9 + 0.81 * 2.0, 1 + 0.9 * 2.0])
    assert np.allclose(gae(rewards, values, 2.0, 0.9, 1.0), returns - values, atol=1e-5)


def test_reward_clipping_follows_rllibs_setting():
    rewards = np.array([-3.0, 0.0, 0.5, 7.0])
    assert np.array_equal(clip_rewards(rewards, True), [-1, 0, 1, 1])
    assert np.array_equal(clip_rewards(rewards, 2.0), [-2, 0, 0.5, 2])
    assert np.array_equal(clip_rewards(rewards, None), rewards)


def episode(name, length, terminated):
    """A synthetic episode whose observations are unique numbers: (id, obs, actions, rewards, terminated)."""
    base = 1000 * (ord(name[0]) - ord("a") + 1)
    obs = (base + np.arange(length + 1, dtype=np.float32))[:, None]
    return name, obs, np.arange(length) % 2, (np.arange(length) + 1.0 + base / 1000).astype(np.float32), terminated


def fragments_of(episodes, cut: int):
    """Each episode in fragments of `cut` steps, interleaved round by round like vectorised envs."""
    rounds = []
    for start in range(0, max(len(e[2]) for e in episodes), cut):
        row = []
        for name, obs, actions, rewards, terminated in episodes:
            if start < len(actions):
                stop = min(start + cut, len(actions))
                last = stop == len(actions)
                row.append(Fragment(name, obs[start:stop + 1], actions[start:stop], rewards[start:stop],
                                    terminated=terminated and last, truncated=last and not terminated))
        rounds.append(row)
    return rounds


def stored_transitions(buffer):
    """Every sampleable transition as {first obs value: (action, return, next obs, discount, terminated)}."""
    out = {}
    for slot in np.flatnonzero(buffer.valid):
        out[float(buffer.obs[slot, 0])] = (int(buffer.actions[slot]), float(buffer.rewards[slot]),
                                           float(buffer.obs[buffer.next_id[slot] % buffer.capacity, 0]),
                                           float(buffer.discounts[slot]), float(buffer.terminated[slot]))
    return out


def direct_transitions(episodes, n, gamma):
    """n-step transitions computed on the whole episodes at once."""
    out = {}
    for _, obs, actions, rewards, terminated in episodes:
        length = len(actions)
        for t in range(length):
            m = min(n, length - t)
            ret = sum(gamma**k * rewards[t + k] for k in range(m))
            out[float(obs[t, 0])] = (int(actions[t]), ret, float(obs[t + m, 0]), gamma**m,
                                     float(terminated and t + m == length))
    return out


def assert_same_transitions(stored, expected):
    assert stored.keys() == expected.keys()
    for key, (action, ret, next_obs, discount, terminated) in expected.items():
        assert stored[key][0] == action and stored[key][2] == next_obs and stored[key][4] == terminated, key
        assert stored[key][1] == pytest.approx(ret, rel=1e-5) and stored[key][3] == pytest.approx(discount)


@pytest.mark.parametrize("n", [1, 3, 5])
def test_n_step_windows_span_fragments_of_one_episode(n):
    """Episodes sampled in 4-step fragments get the same n-step transitions as whole episodes:
    full windows across fragment ends, shorter ones only where the episode ended."""
    gamma = 0.9
    episodes = [episode("a", 11, terminated=True), episode("b", 6, terminated=False), episode("c", 9, terminated=True)]
    buffer = ReplayBuffer(capacity=100, n_step=n, gamma=gamma)
    for row in fragments_of(episodes, cut=4):
        buffer.add_round(row)
    assert len(buffer) == 26
    assert_same_transitions(stored_transitions(buffer), direct_transitions(episodes, n, gamma))


def test_an_episode_missing_from_a_round_is_cut_and_bootstraps():
    buffer = ReplayBuffer(capacity=100, n_step=3, gamma=0.5)
    name, obs, actions, rewards, _ = episode("a", 8, terminated=False)
    buffer.add_round([Fragment(name, obs[:5], actions[:4], rewards[:4], False, False)])
    assert len(buffer) == 2, "two steps have their 3 rewards; two wait for the next fragment"
    buffer.add_round([])  # its EnvRunner was restarted: the episode will not continue
    stored = stored_transitions(buffer)
    assert len(buffer) == 4 and not buffer.waiting
    assert stored[obs[3, 0]][2] == obs[4, 0] and stored[obs[3, 0]][4] == 0.0, "bootstraps from the last obs"


def test_observations_are_stored_once_and_overwritten_oldest_first():
    buffer = ReplayBuffer(capacity=10, n_step=1, gamma=0.9)
    a, b = episode("a", 4, terminated=True), episode("b", 9, terminated=True)
    buffer.add_round([Fragment("a", a[1], a[2], a[3], True, False)])
    buffer.add_round([Fragment("b", b[1], b[2], b[3], True, False)])
    # 5 + 10 observations in 10 slots: all of a and nothing twice; b's final obs is never a transition
    assert buffer.written == 15 and buffer.obs.shape == (10, 1)
    assert sorted(buffer.obs[:, 0].tolist()) == b[1][:, 0].tolist()
    assert len(buffer) == 9 == len(stored_transitions(buffer))
    batch = buffer.sample(500)
    assert np.allclose(batch["next_obs"], batch["obs"] + 1) and set(batch["obs"][:, 0]) == set(b[1][:-1, 0])


def test_replay_state_round_trip_cuts_waiting_episodes():
    buffer = ReplayBuffer(capacity=50, n_step=3, gamma=0.9, seed=3)
    for row in fragments_of([episode("a", 10, terminated=False), episode("b", 7, terminated=True)], cut=4)[:2]:
        buffer.add_round(row)
    assert buffer.waiting
    waiting = sum(len(w.actions) for w in buffer.waiting.values())
    restored = ReplayBuffer(capacity=50, n_step=3, gamma=0.9, seed=0)
    restored.load_state(pickle.loads(pickle.dumps(buffer.state())))
    assert not restored.waiting and len(restored) == len(buffer) + waiting
    assert np.array_equal(restored.obs[:buffer.written], buffer.obs[:buffer.written])
    assert restored.rng.bit_generator.state == buffer.rng.bit_generator.state
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(capacity=60).load_state(buffer.state())


def test_episode_window_sums_fragments_and_keeps_the_last_n():
    window = EpisodeWindow(size=2)
    eps = [episode("a", 5, terminated=True), episode("b", 9, terminated=False), episode("c", 3, terminated=True)]
    finished = []
    for row in fragments_of(eps, cut=4):
        finished += window.add_round(row)
    returns = {e[0]: float(e[3].sum()) for e in eps}
    assert finished == [(returns["c"], 3), (returns["a"], 5), (returns["b"], 9)]  # in the order they ended
    metrics = window.metrics()
    assert metrics["episode_return_mean"] == pytest.approx((returns["a"] + returns["b"]) / 2)
    assert metrics["episodes_in_window"] == 2 and metrics["num_episodes_lifetime"] == 3
    assert np.isnan(EpisodeWindow(size=3).metrics()["episode_return_mean"]), "no episode finished yet"


def test_epsilon_schedule():
    assert linear_schedule(1.0, 0.1, 100, 0) == 1.0
    assert linear_schedule(1.0, 0.1, 100, 50) == pytest.approx(0.55)
    assert linear_schedule(1.0, 0.1, 100, 1000) == pytest.approx(0.1)


def test_return_auc_weights_each_evaluation_by_the_env_steps_it_covers():
    from algorithms.rl.experiment import return_auc

    history = [{"env_steps": 100, "eval/episode_return_mean": 10.0}, {"env_steps": 200},
               {"env_steps": 300, "eval/episode_return_mean": 40.0}]
    assert return_auc(history) == pytest.approx((10 * 100 + 40 * 200) / 300)
    fast = [{"env_steps": s, "eval/episode_return_mean": r} for s, r in ((100, 500.0), (200, 500.0))]
    slow = [{"env_steps": s, "eval/episode_return_mean": r} for s, r in ((100, 20.0), (200, 500.0))]
    assert return_auc(fast) == 500 and return_auc(slow) == 260, "both end at 500; the faster learner scores higher"
