"""Our RLlib algorithms on a real local Ray: target updates per gradient step, n-step windows from real
fragments, complete checkpoints, the A2C batch built before minibatching, the training return and
greedy evaluation checked against an env wrapper that records every episode, learning on CartPole,
parallel EnvRunners with weight sync, and the Atari pipeline."""

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import ray
import torch
from ray import cloudpickle
from ray.tune import register_env

from algorithms.rl import FAMILY
from algorithms.rl.evaluation import greedy_episodes
from algorithms.rl.experiment import RLExperiment, build_config
from algorithms.rl.sampling import sample_fragments, to_fragment

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
        if metrics["episode_return_mean"] >= threshold:
            break
    return metrics


def weights(net):
    return [p.detach().clone() for p in net.parameters()]


@pytest.mark.parametrize("tau,period", [(0.1, 1000), (1.0, 3)])
def test_target_network_updates_once_per_gradient_step(tau, period):
    """Through `training_step` with 4 gradient steps per Learner update: Polyak averaging after every
    step, or a hard copy at every 3rd step, counted in gradient steps across updates."""
    algo = build_config(config(tau=tau, target_update_freq=period, updates_per_rollout=4, train_batch_size=16,
                               learning_starts=64, rollout_steps=32)).build_algo()
    try:
        learner = algo.learner_group._learner  # the local Learner (num_learners=0)
        module = learner.module["default_policy"].unwrapped()
        step, trace = learner.gradient_step, []

        def recorded(minibatch, **kwargs):
            before = weights(module.target_q_net)
            result = step(minibatch, **kwargs)
            trace.append((before, weights(module.q_net), weights(module.target_q_net)))
            return result

        learner.gradient_step = recorded
        while len(trace) < 12:
            algo.training_step()
        assert len(trace) % 4 == 0 and learner.gradient_steps == len(trace)
        for k, (before, online, target) in enumerate(trace, start=1):
            if tau < 1:
                expected = [tau * o + (1 - tau) * b for o, b in zip(online, before)]
            else:
                expected = online if k % period == 0 else before
            assert all(torch.allclose(t, e, atol=1e-6) for t, e in zip(target, expected)), f"gradient step {k}"
        assert learner.steps_at_last_sync == (len(trace) if tau < 1 else len(trace) // period * period)
    finally:
        algo.stop()


@pytest.mark.parametrize("tau", [0.02, 0.5, 1.0])
def test_polyak_update_matches_rllibs_update_target_network(tau):
    """The foreach target update gives what RLlib's state-dict version gives for every float tensor, buffers
    included; an integer buffer (a batch count) is copied, where RLlib's truncates its blend."""
    from ray.rllib.core.learner.utils import update_target_network

    from algorithms.rl.dqn.learner import polyak_update

    torch.manual_seed(0)
    main, ours, theirs = (torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8)) for _ in range(3))
    main(torch.randn(16, 4))  # running statistics and a batch count that differ from the targets'
    theirs.load_state_dict(ours.state_dict())
    polyak_update(main, ours, tau)
    update_target_network(main_net=main, target_net=theirs, tau=tau)
    for (name, a), b, m in zip(ours.state_dict().items(), theirs.state_dict().values(), main.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-7) if a.is_floating_point() else torch.equal(a, m), name
    assert not torch.equal(ours[0].weight, main[0].weight) if tau < 1 else torch.equal(ours[0].weight, main[0].weight)


@pytest.mark.parametrize("double_q,td_loss,grad_clip,tau", [(False, "huber", 10.0, 1.0), (True, "mse", 0.05, 0.02)])
def test_fused_gradient_steps_take_the_steps_of_rllibs_update_path(double_q, td_loss, grad_clip, tau):
    """Our DQN Learner's plain-torch gradient step against TorchLearner's own `_update` on the same fixed
    minibatches from the same weights: the same online and target weights after every step, with gradient
    clipping active (grad_clip 0.05) or not, for both targets and both losses, hard target syncs (every 3rd
    step) and Polyak averaging, logging statistics or not."""
    from ray.rllib.core.learner.torch.torch_learner import TorchLearner

    from algorithms.rl.sampling import learner_batch

    settings = config(algorithm="double_dqn" if double_q else "dqn", td_loss=td_loss, grad_clip=grad_clip, tau=tau,
                      target_update_freq=3, learning_starts=64, rollout_steps=64)
    algos = [build_config(settings).build_algo() for _ in range(2)]
    try:
        fused, reference = (algo.learner_group._learner for algo in algos)
        algos[0].training_step()  # real transitions in the replay buffer
        reference.set_state(fused.get_state())  # the same weights, target weights and optimiser state
        arrays = algos[0].replay.sample(64 * 6)
        tensors = fused._convert_batch_type(learner_batch(arrays))
        tensors = {mid: dict(b) for mid, b in tensors.policy_batches.items()}
        fused.gradient_steps = fused.steps_at_last_sync = reference.gradient_steps = reference.steps_at_last_sync = 0
        for k in range(6):
            minibatch = {mid: {key: value[64 * k:64 * (k + 1)] for key, value in b.items()}
                         for mid, b in tensors.items()}
            fused.gradient_step(minibatch, log_metrics=k % 2 == 0)  # with and without the loss statistics
            TorchLearner._update(reference, minibatch)  # RLlib's path, then the same target-sync rule
            reference.gradient_steps += 1
            reference.sync_targets()
            for name in ("q_net", "target_q_net"):
                ours = getattr(fused.module["default_policy"].unwrapped(), name).parameters()
                theirs = getattr(reference.module["default_policy"].unwrapped(), name).parameters()
                assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in zip(ours, theirs)), (k, name)
    finally:
        for algo in algos:
            algo.stop()


@pytest.mark.parametrize("grad_clip,normalize", [(0.5, False), (0.01, True)])
def test_fused_a2c_update_takes_the_step_of_rllibs_update_path(grad_clip, normalize):
    """Our A2C Learner's plain-torch update against TorchLearner's own `_update`, on the same batches from the
    same weights and optimiser state: the same policy and value weights after every step, with the gradient
    clip active (0.01) or not, and the same loss statistics logged."""
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.learner.torch.torch_learner import TorchLearner
    from ray.rllib.evaluation.postprocessing import Postprocessing

    settings = config(algorithm="a2c", grad_clip=grad_clip, normalize_advantages=normalize)
    algos = [build_config(settings).build_algo() for _ in range(2)]
    try:
        fused, reference = (algo.learner_group._learner for algo in algos)
        reference.set_state(fused.get_state())
        generator = torch.Generator().manual_seed(0)
        for k in range(4):
            batch = {"default_policy": {
                Columns.OBS: torch.randn(64, 4, generator=generator),
                Columns.ACTIONS: torch.randint(0, 2, (64,), generator=generator),
                Postprocessing.ADVANTAGES: torch.randn(64, generator=generator),
                Postprocessing.VALUE_TARGETS: torch.randn(64, generator=generator) * 10}}
            fused._update(batch)
            TorchLearner._update(reference, batch)
            ours, theirs = (learner.module["default_policy"].unwrapped() for learner in (fused, reference))
            assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-7)
                       for a, b in zip(ours.parameters(), theirs.parameters())), k
            logged = [float(learner.metrics.peek(("default_policy", "policy_loss"))) for learner in (fused, reference)]
            assert logged[0] == pytest.approx(logged[1], rel=1e-5)
    finally:
        for algo in algos:
            algo.stop()


@pytest.mark.parametrize("algorithm", ["dqn", "a2c"])
def test_lean_connectors_sample_what_rllibs_default_pipelines_sample(algorithm):
    """The same seed through our two-piece pipelines and through RLlib's defaults: the same episodes, step for
    step (observations, actions, rewards, ends; A2C's sampled actions and their log-probabilities too), across
    episode ends and the vector env's automatic resets."""
    from ray.rllib.core.columns import Columns

    from algorithms.rl.connectors import ActionsToEnv, StackObservations

    def sampled(lean: bool):
        settings = build_config(config(algorithm=algorithm, learning_starts=10**6, num_envs_per_env_runner=4))
        if not lean:
            settings.env_runners(add_default_connectors_to_env_to_module_pipeline=True,
                                 add_default_connectors_to_module_to_env_pipeline=True)
            settings._env_to_module_connector = settings._module_to_env_connector = None
        algo = settings.build_algo()
        try:
            runner = algo.env_runner_group.local_env_runner
            pieces = [type(c) for c in runner._env_to_module.connectors + runner._module_to_env.connectors]
            assert (pieces == [StackObservations, ActionsToEnv]) == lean, pieces
            episodes = [e for _ in range(3) for e in runner.sample(num_timesteps=600, explore=True)]
            return episodes, sum(len(e) for e in episodes)
        finally:
            algo.stop()

    (ours, our_steps), (theirs, their_steps) = sampled(lean=True), sampled(lean=False)
    assert our_steps == their_steps >= 1800
    assert len(ours) == len(theirs) and sum(e.is_done for e in ours) >= 20  # many episode ends and resets
    for a, b in zip(ours, theirs):
        assert (a.is_terminated, a.is_truncated, len(a)) == (b.is_terminated, b.is_truncated, len(b))
        assert np.array_equal(np.asarray(a.get_observations()), np.asarray(b.get_observations()))
        assert np.array_equal(np.asarray(a.get_actions()), np.asarray(b.get_actions()))
        assert np.array_equal(np.asarray(a.get_rewards()), np.asarray(b.get_rewards()))
        if algorithm == "a2c":
            logp = [np.asarray(e.get_extra_model_outputs(Columns.ACTION_LOGP)) for e in (a, b)]
            assert np.allclose(*logp)


def test_categorical_actions_draw_what_rllibs_distribution_draws():
    """The lean sampler: from the same seed, the actions TorchCategorical samples and its log-probabilities;
    not exploring, the mode with log-probability 0 (RLlib's to_deterministic())."""
    from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical

    from algorithms.rl.connectors import categorical_actions

    logits = torch.randn(4096, 3, generator=torch.Generator().manual_seed(0)) * 2
    torch.manual_seed(1)
    actions, logp = categorical_actions(logits, explore=True)
    torch.manual_seed(1)
    dist = TorchCategorical.from_logits(logits)
    assert torch.equal(actions, dist.sample())
    assert torch.allclose(logp, dist.logp(actions), atol=1e-6)
    mode, zero = categorical_actions(logits, explore=False)
    assert torch.equal(mode, logits.argmax(-1)) and not zero.any()


@pytest.mark.parametrize("algorithm", ["dqn", "a2c"])
def test_the_local_env_runner_samples_with_the_learners_latest_weights(algorithm):
    """Without remote EnvRunners, learn_and_sync hands the weights to the local one directly (RLlib's
    sync_weights would first put them in the object store): after every training step, its module holds
    the learner's weights, and the weights moved."""
    algo = build_config(config(algorithm=algorithm, learning_starts=100, rollout_steps=64)).build_algo()
    try:
        runner, learner = algo.env_runner_group.local_env_runner, algo.learner_group._learner
        before = {k: v.clone() for k, v in runner.module.state_dict().items()}
        for _ in range(4):
            algo.training_step()
            theirs = learner.module["default_policy"].state_dict()
            for name, value in runner.module.state_dict().items():
                assert torch.equal(value, theirs[name]), name
        assert any(not torch.equal(before[k], v) for k, v in runner.module.state_dict().items())
    finally:
        algo.stop()


def test_exploration_schedule_follows_every_env_step_of_an_iteration():
    """RLlib moves an EnvRunner's env-step count only once per `train()`; the epsilon schedule must still see
    every step: through one iteration of 3000 env steps (12 training steps), the `t` the module explores with
    rises with the steps sampled and ends at the last vector step."""
    algo = build_config(config(env_steps_per_iteration=3000, learning_starts=10**6)).build_algo()
    try:
        runner = algo.env_runner_group.local_env_runner
        seen, forward = [], runner.module.forward_exploration
        runner.module.forward_exploration = lambda batch, t=0, **kw: (seen.append(t), forward(batch, t=t, **kw))[1]
        steps = algo.train()["env_runners"]["num_env_steps_sampled_lifetime"]
        assert steps >= 3000 and seen == sorted(seen)
        assert steps - 16 <= max(seen) < steps, (max(seen), steps)
    finally:
        algo.stop()


def test_learning_starts_after_that_many_env_steps_even_when_the_buffer_holds_fewer():
    """CleanRL's DQN settings have learning_starts == replay_capacity (10,000). A buffer never holds quite that
    many sampleable transitions (the latest observation of each unfinished episode waits for its successor),
    so learning must start from the env steps sampled, as RLlib and CleanRL count them, not from the buffer."""
    algo = build_config(config(replay_capacity=500, learning_starts=500, rollout_steps=64, updates_per_rollout=2,
                               train_batch_size=32)).build_algo()
    try:
        learner, sampled = algo.learner_group._learner, 0
        while sampled < 500:
            algo.training_step()
            sampled = algo.metrics.peek(("env_runners", "num_env_steps_sampled_lifetime"))
            assert learner.gradient_steps == (2 if sampled >= 500 else 0), sampled
        assert len(algo.replay) < 500
    finally:
        algo.stop()


def test_n_step_windows_from_real_fragments():
    """CartPole sampled by 8 envs in fragments of about 4 steps: every transition of a finished episode in the
    buffer equals the 3-step transition computed on the whole episode."""
    gamma, n = 0.99, 3
    algo = build_config(config(n_step=n, gamma=gamma, rollout_steps=32, learning_starts=10**6)).build_algo()
    try:
        recorded, add_round = [], algo.replay.add_round
        algo.replay.add_round = lambda fragments: (recorded.append(fragments), add_round(fragments))
        for _ in range(30):
            algo.training_step()
        episodes = {}
        for fragments in recorded:
            assert max(len(f.actions) for f in fragments) <= 5  # 32 steps over 8 envs (+1 where an env reset)
            for f in fragments:
                episodes.setdefault(f.episode_id, []).append(f)
        finished = [parts for parts in episodes.values() if parts[-1].done]
        assert len(finished) >= 5 and max(len(parts) for parts in finished) >= 3, "episodes span fragments"
        replay = algo.replay
        stored = {replay.obs[slot].tobytes(): slot for slot in np.flatnonzero(replay.valid)}
        for parts in finished:
            obs = np.concatenate([parts[0].observations] + [p.observations[1:] for p in parts[1:]])
            actions = np.concatenate([p.actions for p in parts])
            rewards = np.concatenate([p.rewards for p in parts])
            length = len(actions)
            for t in range(length):
                m = min(n, length - t)
                slot = stored[obs[t].tobytes()]
                assert replay.actions[slot] == actions[t]
                assert replay.rewards[slot] == pytest.approx(sum(gamma**k * rewards[t + k] for k in range(m)))
                assert replay.discounts[slot] == pytest.approx(gamma**m)
                assert np.array_equal(replay.obs[replay.next_id[slot] % replay.capacity], obs[t + m])
                assert replay.terminated[slot] == float(parts[-1].terminated and t + m == length)
    finally:
        algo.stop()


def test_checkpoint_restores_replay_counters_episodes_and_history(tmp_path):
    settings = dict(algorithm="double_dqn", env_steps_per_iteration=1500, learning_starts=500, n_step=3)
    first = RLExperiment(config(**settings))
    try:
        first.step()
        first.step()
        first.save(tmp_path)
        saved = {"weights": first.algo.learner_group.get_weights()["default_policy"],
                 "replay": first.algo.replay.state(), "steps": first.algo.learner_group._learner.gradient_steps,
                 "sync": first.algo.learner_group._learner.steps_at_last_sync,
                 "window": first.algo.training_episodes.state(), "history": first.history}
    finally:
        first.close()
    second = RLExperiment(config(**settings, seed=1))
    try:
        second.restore(tmp_path)
        algo = second.algo
        restored = algo.learner_group.get_weights()["default_policy"]
        assert all(np.allclose(saved["weights"][k], restored[k]) for k in restored)
        assert saved["steps"] > 0 and algo.learner_group._learner.gradient_steps == saved["steps"]
        assert algo.learner_group._learner.steps_at_last_sync == saved["sync"]
        replay, valid = algo.replay.state(), saved["replay"]["valid"]
        assert np.array_equal(replay["obs"], saved["replay"]["obs"])
        for key in ("actions", "rewards", "next_id", "discounts", "terminated"):
            assert np.array_equal(replay[key][valid], saved["replay"][key][valid]), key
        waiting = np.concatenate([w.ids[:-1] for w in saved["replay"]["waiting"].values()]) % algo.replay.capacity
        assert len(waiting) and np.array_equal(np.flatnonzero(replay["valid"] & ~valid), np.sort(waiting)), \
            "steps that waited for their window at the checkpoint are cut, not lost"
        assert algo.training_episodes.state() == saved["window"]
        assert second.history == saved["history"]
        metrics = second.step()
        assert metrics["env_steps"] > 4500, "the env-step counter continues from the checkpoint"
        assert len(second.history) == 3 and metrics["train/env_steps_per_s"] < 2 * max(
            h["train/env_steps_per_s"] for h in saved["history"]), "throughput counts only this iteration's steps"
    finally:
        second.close()


def test_a2c_batch_is_built_from_whole_fragments_before_minibatching():
    """The learner connector's advantages equal GAE over each whole fragment, and RLlib may then cut
    and shuffle the batch into minibatches: the loss only reads per-row columns."""
    from ray.rllib.evaluation.postprocessing import Postprocessing

    from algorithms.rl.targets import gae

    algo = build_config(config(algorithm="a2c", gae_lambda=0.9, gamma=0.97)).build_algo()
    try:
        episodes = sample_fragments(algo, num_timesteps=64)
        learner = algo.learner_group._learner
        batch = learner._learner_connector(rl_module=learner.module, batch={}, episodes=episodes)["default_policy"]
        module = learner.module["default_policy"].unwrapped()
        expected = []
        for fragment in map(to_fragment, episodes):
            with torch.no_grad():
                values = module.compute_values({"obs": torch.as_tensor(fragment.observations)}).numpy()
            expected.append(gae(fragment.rewards, values[:-1], 0.0 if fragment.terminated else values[-1], 0.97, 0.9))
        assert np.allclose(batch[Postprocessing.ADVANTAGES].numpy(), np.concatenate(expected), atol=1e-5)
        before = weights(module)
        algo.learner_group.update(episodes=episodes, minibatch_size=16, num_epochs=2, shuffle_batch_per_epoch=True)
        assert not all(torch.equal(a, b) for a, b in zip(before, weights(module)))
    finally:
        algo.stop()


class RecordReturns(gym.Wrapper):
    """Appends every finished episode's return to a file per EnvRunner (worker 0: the driver)."""

    def __init__(self, env, directory: str, worker: int):
        super().__init__(env)
        self.path, self.total = Path(directory) / f"w{worker}.txt", 0.0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.total += reward
        if terminated or truncated:
            with open(self.path, "a") as f:
                f.write(f"{self.total}\n")
            self.total = 0.0
        return obs, reward, terminated, truncated, info

    def reset(self, **kwargs):
        self.total = 0.0
        return self.env.reset(**kwargs)


cloudpickle.register_pickle_by_value(sys.modules[__name__])  # remote EnvRunners need RecordReturns
register_env("recorded-cartpole",
             lambda ctx: RecordReturns(gym.make("CartPole-v1"), ctx["directory"], ctx.worker_index))


def recorded(directory: Path, worker: int) -> list[float]:
    path = directory / f"w{worker}.txt"
    return [float(line) for line in path.read_text().split()] if path.exists() else []


def test_training_return_is_the_mean_of_the_last_n_recorded_episodes(tmp_path):
    """With 2 remote EnvRunners, after every iteration: the logged return equals the mean of the last
    5 episodes the env wrapper recorded, ordered round by round and EnvRunner by EnvRunner."""
    algo = (build_config(config(algorithm="a2c", num_env_runners=2, num_envs_per_env_runner=2,
                                rollout_fragment_length=8, env_steps_per_iteration=1, episode_return_window=5))
            .environment("recorded-cartpole", env_config={"directory": str(tmp_path)}).build_algo())
    try:
        ordered, seen = [], {1: 0, 2: 0}
        checked = 0
        for _ in range(40):
            result = algo.train()["training_episodes"]
            for worker in (1, 2):
                returns = recorded(tmp_path, worker)
                ordered += returns[seen[worker]:]
                seen[worker] = len(returns)
            assert result["num_episodes_lifetime"] == len(ordered)
            if ordered:
                assert result["episode_return_mean"] == np.mean(ordered[-5:])
                assert result["episodes_in_window"] == min(5, len(ordered))
                checked += 1
        assert len(ordered) > 10 and checked > 20 and seen[1] > 0 and seen[2] > 0
    finally:
        algo.stop()


def test_evaluation_is_greedy_and_stays_out_of_training(tmp_path):
    algo = (build_config(config(num_env_runners=1, learning_starts=200, evaluation_episodes=5,
                                env_steps_per_iteration=500))
            .environment("recorded-cartpole", env_config={"directory": str(tmp_path)}).build_algo())
    try:
        algo.train()
        algo.train()
        replay_size, window = len(algo.replay), algo.training_episodes.state()
        evaluation = algo.evaluate()
        eval_returns = recorded(tmp_path, 0)
        assert len(eval_returns) == 5 and evaluation["num_episodes"] == 5
        assert evaluation["episode_return_mean"] == pytest.approx(np.mean(eval_returns))
        assert evaluation["episode_return_mean_ci_low"] <= evaluation["episode_return_mean"] <= \
            evaluation["episode_return_mean_ci_high"]
        assert len(algo.replay) == replay_size and algo.training_episodes.state() == window
        again = algo.evaluate()
        assert again["episode_return_mean"] == evaluation["episode_return_mean"], "same seeds, same greedy policy"
        envs, seeds = [gym.make("CartPole-v1") for _ in range(5)], list(range(5))
        random_actions = greedy_episodes(algo.get_module(), envs, seeds, epsilon=1.0)
        assert random_actions == greedy_episodes(algo.get_module(), envs, seeds, epsilon=1.0), "seeded"
        assert random_actions != greedy_episodes(algo.get_module(), envs, seeds)
        result = algo.train()["training_episodes"]
        assert result["num_episodes_lifetime"] == len(recorded(tmp_path, 1)), "only training episodes count"
        epsilon_zero = algo.get_module()._forward_inference({"obs": torch.zeros(3, 4)})["actions"]
        assert epsilon_zero.tolist() == algo.get_module().q_net(torch.zeros(3, 4)).argmax(1).tolist()
    finally:
        algo.stop()


@pytest.mark.parametrize("algorithm,lr,budget", [("dqn", 5e-4, 30_000), ("double_dqn", 5e-4, 30_000),
                                                 ("a2c", 2e-3, 80_000)])
def test_learns_cartpole(algorithm, lr, budget):
    experiment = RLExperiment(config(algorithm=algorithm, lr=lr, env_steps_per_iteration=2000, seed=0))
    try:
        metrics = train_until(experiment, 150, budget)
        assert metrics["episode_return_mean"] >= 150, experiment.history
        first_eval = experiment.history[0]["eval/episode_return_mean"]
        assert metrics["eval/episode_return_mean"] > first_eval, "the greedy policy improved too"
        if algorithm != "a2c":
            assert metrics["train/epsilon"] < 0.5 and metrics["train/q_mean"] > 2
        else:
            assert 0 < metrics["train/entropy"] < np.log(2) + 1e-6
    finally:
        experiment.close()


def test_reinforce_with_baseline_improves():
    experiment = RLExperiment(config(algorithm="reinforce", lr=2e-3, episodes_per_batch=8, num_envs_per_env_runner=8,
                                     env_steps_per_iteration=2000))
    try:
        first = experiment.step()["episode_return_mean"]
        last = train_until(experiment, 100, 30_000)["episode_return_mean"]
        assert last > first + 20, experiment.history
    finally:
        experiment.close()


class TwoLengthEnv(gym.Env):
    """Episodes of 2 steps (3 in 4) or 20 steps, whatever the agent does; reward 1 per step."""
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, config=None):
        super().__init__()

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.length, self.t = (2 if self.np_random.random() < 0.75 else 20), 0
        return np.zeros(2, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(2, np.float32), 1.0, self.t >= self.length, False, {}


def test_reinforce_batches_are_whole_episodes_without_a_bias_towards_short_ones():
    """On 8 envs, the first 16 episodes to finish would be nearly all 2-step ones (an env that drew a
    2-step episode draws about 3 more before its first 20-step one). A batch is the first episode of every
    env, two rounds of them, so the batch's lengths are the env's: 3 in 4 are 2 steps. Every round starts
    from fresh start states (RLlib's `sample(num_episodes=...)` reseeds every env with the same seeds
    each call, so each of its batches repeated the first one)."""
    from algorithms.rl.actor_critic import A2CConfig

    algo = (A2CConfig().environment(TwoLengthEnv).env_runners(num_env_runners=0, num_envs_per_env_runner=8)
            .training(complete_episodes=True, lambda_=1.0, episodes_per_batch=16)
            .reporting(min_sample_timesteps_per_iteration=1, metrics_num_episodes_for_smoothing=480)
            .debugging(seed=0).build_algo())
    try:
        batches = []
        while algo.training_episodes.completed < 480:
            algo.train()
            batches.append(sorted(length for _, length in list(algo.training_episodes.finished)[-16:]))
        lengths = [length for _, length in algo.training_episodes.finished]
        assert algo.training_episodes.completed == 16 * len(batches), "two rounds of one episode from each of 8 envs"
        short = lengths.count(2) / len(lengths)
        assert abs(short - 0.75) < 4 * np.sqrt(0.75 * 0.25 / len(lengths)), short  # 4 standard errors: 0.08
        assert len({tuple(batch) for batch in batches}) > 5, "batches are fresh draws, not one batch repeated"
    finally:
        algo.stop()


def test_reinforce_refuses_a_batch_that_is_not_whole_rounds():
    from algorithms.rl.actor_critic import A2CConfig

    config = (A2CConfig().environment("CartPole-v1").env_runners(num_env_runners=0, num_envs_per_env_runner=8)
              .training(complete_episodes=True, episodes_per_batch=12))
    with pytest.raises(ValueError, match=r"episodes_per_batch \(12\) must be a multiple of the number of envs"):
        config.validate()


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
                lambda runner: runner.module.get_state(), local_env_runner=True):
            for key, value in runner_weights.items():
                assert np.allclose(value, learner_weights[key]), f"{key} not synced"
    finally:
        experiment.close()


@pytest.mark.parametrize("algorithm,values", [
    ("dqn", {"lr": 0.0123, "tau": 0.5, "target_update_freq": 7, "epsilon_end": 0.3}),
    ("a2c", {"lr": 0.0123, "entropy_coeff": 0.5})])
def test_pbt_changes_hold_in_the_learner_and_the_env_runners(algorithm, values, tmp_path):
    """RLlib's lr scheduler resets the optimiser's lr from the frozen config after every update: a PBT change
    must survive training steps, reach the remote EnvRunners' exploration and survive a restore."""
    settings = dict(algorithm=algorithm, num_env_runners=1, num_envs_per_env_runner=2, env_steps_per_iteration=300,
                    learning_starts=64)
    experiment = RLExperiment(config(**settings))
    try:
        defaults = experiment.hyperparameters()
        assert defaults["lr"] == 1e-3 and all(defaults[k] != v for k, v in values.items())
        experiment.apply_hyperparameters(values)
        experiment.step()
        experiment.step()
        learner = experiment.algo.learner_group._learner
        optimizer = learner.get_optimizers_for_module("default_policy")[0][1]
        assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0123), "the scheduler undid the change"
        assert experiment.hyperparameters() == pytest.approx(values)
        if algorithm == "dqn":
            remote = experiment.algo.env_runner_group.foreach_env_runner(
                lambda runner: runner.module.epsilon(10**9), local_env_runner=False)
            assert remote == [pytest.approx(0.3)]
        experiment.save(tmp_path)
    finally:
        experiment.close()
    restored = RLExperiment(config(**settings))  # a PBT exploit: another trial's checkpoint, then this trial's values
    try:
        restored.restore(tmp_path)
        restored.apply_hyperparameters({"lr": 0.002})
        restored.step()
        assert restored.hyperparameters()["lr"] == pytest.approx(0.002)
    finally:
        restored.close()


def test_atari_pipeline_runs():
    experiment = RLExperiment(config(algorithm="dqn", env="ALE/Pong-v5", num_envs_per_env_runner=1,
                                     replay_capacity=2000, learning_starts=100, rollout_steps=16,
                                     updates_per_rollout=1, train_batch_size=16, env_steps_per_iteration=200,
                                     evaluation_episodes=1))
    try:
        module = experiment.algo.get_module()
        assert module.observation_space.shape == (4, 84, 84)
        assert type(module.q_net.trunk).__name__ == "NatureCNN"
        first = experiment.step()
        assert first["eval/episode_return_mean"] <= -15, "an untrained agent loses Pong: a game score, not clipped"
        second = experiment.step()
        assert second["env_steps"] >= 400 and "train/td_loss" in second
        replay = experiment.algo.replay
        assert replay.obs.dtype == np.uint8 and replay.obs.shape == (2000, 4, 84, 84), "each frame stack once"
        assert set(np.unique(replay.rewards[replay.valid])) <= {-1.0, 0.0, 1.0}, "the learner clips rewards"
    finally:
        experiment.close()


def test_acrobot_runs_with_three_actions():
    experiment = RLExperiment(config(algorithm="double_dqn", env="Acrobot-v1", env_steps_per_iteration=600,
                                     learning_starts=200, epsilon_timesteps=500, evaluation_episodes=2))
    try:
        module = experiment.algo.get_module()
        assert module.action_space.n == 3 and module.observation_space.shape == (6,)
        observations = torch.as_tensor(np.stack([module.observation_space.sample() for _ in range(256)]))
        with torch.no_grad():
            assert abs(module.q_net(observations).mean().item()) < 0.5, "the untrained net estimates about 0"
        metrics = experiment.step()
        assert metrics["env_steps"] >= 600 and "train/td_loss" in metrics
        # Acrobot pays -1 a step: 400 env steps of updates (to -1.0 +- 0.1 on seeds 0-2) pull the Q estimates from the
        # untrained net's ~0 towards the negative returns; a learner that does not learn stays near 0
        assert metrics["train/q_mean"] < -0.5 and metrics["train/target_mean"] < -0.5, metrics
    finally:
        experiment.close()


@pytest.mark.parametrize("algorithm", ["dqn", "a2c"])
def test_exported_policy_acts_as_the_module_and_rolls_out_like_evaluation(algorithm):
    """The MLflow model's network is the module's greedy choice, and `greedy_episodes` with it as a
    plain function replays the algorithm's own evaluation episode for episode."""
    from algorithms.rl.evaluation import greedy_actions

    experiment = RLExperiment(config(algorithm=algorithm, iterations=1, env_steps_per_iteration=300,
                                     learning_starts=100, evaluation_episodes=3))
    try:
        evaluated = experiment.step()["eval/episode_return_mean"]
        module = experiment.algo.get_module()
        export = experiment.export_model(Path("."))
        assert export.flavor == "pytorch" and not export.model.training
        obs = torch.as_tensor(np.random.default_rng(0).normal(0, 0.5, (64, 4)).astype(np.float32))
        assert export.model(obs).tolist() == greedy_actions(module, obs.numpy()).tolist()
        envs = [gym.make("CartPole-v1") for _ in range(3)]
        from algorithms.rl.base import EVAL_SEED_OFFSET

        episodes = greedy_episodes(lambda o: export.model(torch.as_tensor(o)).numpy(), envs,
                                   [EVAL_SEED_OFFSET + i for i in range(3)])
        assert np.mean([r for r, _ in episodes]) == evaluated
    finally:
        experiment.close()
