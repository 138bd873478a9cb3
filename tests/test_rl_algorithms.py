"""Our RLlib algorithms on a real local Ray: target sync timing, learning on CartPole, parallel
EnvRunners with weight sync, and the Atari pipeline."""

import numpy as np
import pytest
import ray
import torch

from algorithms.rl import FAMILY
from algorithms.rl.experiment import RLExperiment, build_config
from algorithms.rl.sampling import learner_batch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def config(**overrides):
    return FAMILY.resolve(overrides)


def train_until(experiment, threshold, max_steps):
    metrics = {}
    while not metrics or metrics["env_steps"] < max_steps:
        metrics = experiment.step()
        if metrics.get("episode_return_mean", 0) >= threshold:
            break
    return metrics


def test_target_network_syncs_every_c_gradient_steps():
    algo = build_config(config(target_update_freq=3, updates_per_rollout=1, train_batch_size=16)).build_algo()
    try:
        learner = algo.learner_group._learner  # the local Learner (num_learners=0)
        module = learner.module["default_policy"].unwrapped()
        rng = np.random.default_rng(0)
        batch = {"obs": rng.normal(size=(16, 4)).astype(np.float32), "actions": rng.integers(0, 2, 16),
                 "rewards": np.ones(16, np.float32), "next_obs": rng.normal(size=(16, 4)).astype(np.float32),
                 "discounts": np.full(16, 0.99, np.float32), "terminated": np.zeros(16, np.float32)}

        def same():
            return all(torch.equal(a, b) for a, b in zip(module.q_net.parameters(),
                                                        module.target_q_net.parameters()))

        assert same(), "the target starts as a copy"
        for step in (1, 2, 3, 4):
            algo.learner_group.update(batch=learner_batch(batch), minibatch_size=16, num_epochs=1)
            assert same() == (step == 3), f"after gradient step {step}"
    finally:
        algo.stop()


def test_one_learner_update_takes_each_minibatch_as_a_gradient_step():
    """DQNLearner._update runs the minibatches of one update back to back: the same weights as one
    update per minibatch, in order."""
    rng = np.random.default_rng(0)
    batch = {"obs": rng.normal(size=(48, 4)).astype(np.float32), "actions": rng.integers(0, 2, 48),
             "rewards": rng.normal(size=48).astype(np.float32), "next_obs": rng.normal(size=(48, 4)).astype(np.float32),
             "discounts": np.full(48, 0.99, np.float32), "terminated": np.zeros(48, np.float32)}
    weights = []
    for chunks in ([slice(0, 48)], [slice(0, 16), slice(16, 32), slice(32, 48)]):
        algo = build_config(config(train_batch_size=16, target_update_freq=1000, seed=0)).build_algo()
        try:
            learner = algo.learner_group._learner
            q_net = learner.module["default_policy"].unwrapped().q_net
            initial = [p.detach().clone() for p in q_net.parameters()]
            for part in chunks:
                algo.learner_group.update(batch=learner_batch({k: v[part] for k, v in batch.items()}))
            assert learner.gradient_steps == 3
            weights.append([p.detach().clone() for p in q_net.parameters()])
        finally:
            algo.stop()
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*weights))
    assert not all(torch.equal(a, b) for a, b in zip(weights[-1], initial))


@pytest.mark.parametrize("algorithm,lr,budget", [("dqn", 5e-4, 30_000), ("double_dqn", 5e-4, 30_000),
                                                 ("a2c", 2e-3, 80_000)])
def test_learns_cartpole(algorithm, lr, budget):
    experiment = RLExperiment(config(algorithm=algorithm, lr=lr, env_steps_per_iteration=2000, seed=0))
    try:
        metrics = train_until(experiment, 150, budget)
        assert metrics["episode_return_mean"] >= 150, experiment.history
        assert metrics["train/env_steps_per_s"] > 500, "far above RLlib's built-in DQN (about 71/s here)"
        if algorithm != "a2c":
            assert metrics["train/epsilon"] < 0.5 and metrics["train/q_mean"] > 2
        else:
            assert 0 < metrics["train/entropy"] < np.log(2) + 1e-6
    finally:
        experiment.close()


def test_reinforce_with_baseline_improves():
    experiment = RLExperiment(config(algorithm="reinforce", lr=2e-3, episodes_per_batch=8,
                                     env_steps_per_iteration=2000))
    try:
        first = experiment.step()["episode_return_mean"]
        last = train_until(experiment, 100, 30_000)["episode_return_mean"]
        assert last > first + 20, experiment.history
    finally:
        experiment.close()


def test_parallel_env_runners_sample_and_receive_weights():
    experiment = RLExperiment(config(algorithm="a2c", num_env_runners=2, num_envs_per_env_runner=2,
                                     env_steps_per_iteration=400))
    try:
        metrics = experiment.step()
        assert metrics["env_steps"] >= 400
        algo = experiment.algo
        assert algo.env_runner_group.num_healthy_remote_workers() == 2
        learner_weights = algo.learner_group.get_weights()["default_policy"]
        for runner_weights in algo.env_runner_group.foreach_env_runner(
                lambda runner: runner.module.get_state(), local_env_runner=False):
            for key, value in runner_weights.items():
                assert np.allclose(value, learner_weights[key]), f"{key} not synced"
    finally:
        experiment.close()


def test_atari_pipeline_runs():
    experiment = RLExperiment(config(algorithm="dqn", env="ALE/Pong-v5", num_envs_per_env_runner=1,
                                     replay_capacity=2000, learning_starts=100, rollout_steps=16,
                                     updates_per_rollout=1, train_batch_size=16, env_steps_per_iteration=200))
    try:
        module = experiment.algo.get_module()
        assert module.observation_space.shape == (4, 84, 84)
        assert type(module.q_net.trunk).__name__ == "NatureCNN"
        experiment.step()
        second = experiment.step()
        assert second["env_steps"] >= 400 and "train/td_loss" in second
        obs = experiment.algo.replay.storage["obs"]
        assert obs.dtype == np.uint8 and obs.shape[1:] == (4, 84, 84)
        assert set(np.unique(experiment.algo.replay.storage["rewards"][:len(experiment.algo.replay)])) <= {
            -1.0, 0.0, 1.0}, "rewards are clipped"
    finally:
        experiment.close()


def test_checkpoint_restores_the_learned_weights(tmp_path):
    first = RLExperiment(config(algorithm="double_dqn", env_steps_per_iteration=1500))
    try:
        first.step()
        first.save(tmp_path)
        weights = first.algo.learner_group.get_weights()["default_policy"]
    finally:
        first.close()
    second = RLExperiment(config(algorithm="double_dqn", env_steps_per_iteration=1500, seed=1))
    try:
        second.restore(tmp_path)
        restored = second.algo.learner_group.get_weights()["default_policy"]
        assert all(np.allclose(weights[k], restored[k]) for k in weights)
        assert second.step()["env_steps"] > 1500, "the env-step counter continues from the checkpoint"
    finally:
        second.close()


def test_acrobot_runs_with_three_actions():
    experiment = RLExperiment(config(algorithm="double_dqn", env="Acrobot-v1", env_steps_per_iteration=600,
                                     learning_starts=200, epsilon_timesteps=500))
    try:
        module = experiment.algo.get_module()
        assert module.action_space.n == 3 and module.observation_space.shape == (6,)
        metrics = experiment.step()
        assert metrics["env_steps"] >= 600 and "train/td_loss" in metrics
    finally:
        experiment.close()
