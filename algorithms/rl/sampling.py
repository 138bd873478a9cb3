"""Our side of RLlib's data flow: sample EnvRunners in parallel, turn episode fragments into plain
arrays, hand data to the Learners and push the new weights back."""

from __future__ import annotations

import numpy as np
import tree

from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_RL_MODULE, DEFAULT_MODULE_ID
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import (ENV_RUNNER_RESULTS, LEARNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME,
                                     WEIGHTS_SEQ_NO)

from algorithms.rl.replay import Fragment


def sample_fragments(algorithm, num_timesteps: int) -> list:
    """Sample `num_timesteps` on every EnvRunner at once (or the local one when there are none);
    aggregate their metrics. Returns RLlib's episode fragments, EnvRunner by EnvRunner, each runner's in
    the order it returned them."""
    runners = max(1, algorithm.env_runner_group.num_remote_workers())
    per_runner = max(1, num_timesteps // runners)
    return _on_every_runner(algorithm, lambda runner: _sample_on(runner, per_runner))


def sample_first_episodes(algorithm, rounds: int) -> list:
    """Whole episodes without a bias towards short ones: `rounds` times on every EnvRunner at once, every
    env is reset and each env's first episode is run to its end (`_first_episodes_on`). Returns
    `rounds` x (number of envs) complete episodes, all sampled with the current weights."""
    return _on_every_runner(algorithm, lambda runner: _first_episodes_on(runner, rounds))


def _on_every_runner(algorithm, sample_on) -> list:
    group = algorithm.env_runner_group
    results = group.foreach_env_runner(sample_on, local_env_runner=group.num_remote_workers() <= 0)
    algorithm.metrics.aggregate([r[1] for r in results], key=ENV_RUNNER_RESULTS)
    return [episode for episode in tree.flatten([r[0] for r in results]) if len(episode) > 0]


def _count_sampled(runner, steps: int) -> None:
    """Move the runner's lifetime env-step count on by what it sampled. The module's exploration
    schedule reads that count (RLlib's `forward_exploration(t=...)`), and RLlib sets it only once per
    `train()`: without this, epsilon would stay where the iteration began for all of an iteration's
    training steps and decay over more env steps than `epsilon_timesteps`. Like RLlib's count, it is
    global (this runner's steps times the number of runners) until RLlib sets the exact one."""
    runner.num_env_steps_sampled_lifetime += steps * max(1, runner.config.num_env_runners)


def _sample_on(runner, num_timesteps: int) -> tuple[list, dict]:
    """One EnvRunner's sample of `num_timesteps` and its metrics."""
    episodes = runner.sample(explore=True, num_timesteps=num_timesteps)
    _count_sampled(runner, sum(len(episode) for episode in episodes))
    return episodes, runner.get_metrics()


def _first_episodes_on(runner, rounds: int, steps_per_call: int = 32) -> tuple[list, dict]:
    """Per round: reset every env, step all of them until each env's first episode has ended, and keep
    exactly those episodes. RLlib's `sample(num_episodes=N)` instead returns the first N episodes to
    finish across the envs, whose fast envs start second and third episodes meanwhile: short episodes
    are over-represented, which biases a policy gradient and the logged return downwards. Here an env
    that finishes early keeps stepping (a vector env steps all its envs together) and its later
    episodes are discarded; they are counted as sampled env steps, since they were."""
    kept, sampled = [], 0
    for _ in range(rounds):
        # one step per env from a reset: every env's first episode appears once, with its id
        chunks = runner.sample(explore=True, num_timesteps=runner.num_envs, force_reset=True)
        sampled += sum(len(c) for c in chunks)
        running = {c.id_: c for c in chunks if not c.is_done}
        kept += [c for c in chunks if c.is_done]
        while running:
            chunks = runner.sample(explore=True, num_timesteps=runner.num_envs * steps_per_call)
            sampled += sum(len(c) for c in chunks)
            seen = set()
            for chunk in chunks:
                if chunk.id_ in running:
                    seen.add(chunk.id_)
                    episode = running[chunk.id_]
                    episode.concat_episode(chunk)
                    if episode.is_done:
                        kept.append(running.pop(chunk.id_))
            for lost in set(running) - seen:  # an env that failed and was reset by RLlib: its episode is gone
                del running[lost]
    _count_sampled(runner, sampled)
    return kept, runner.get_metrics()


def to_fragment(episode) -> Fragment:
    """An RLlib SingleAgentEpisode (chunk) as plain arrays, under its stable episode id."""
    return Fragment(episode_id=episode.id_, observations=np.asarray(episode.get_observations()),
                    actions=np.asarray(episode.get_actions()),
                    rewards=np.asarray(episode.get_rewards(), dtype=np.float32),
                    terminated=bool(episode.is_terminated), truncated=bool(episode.is_truncated))


def learner_batch(arrays: dict[str, np.ndarray]) -> MultiAgentBatch:
    """numpy arrays -> the MultiAgentBatch a Learner converts to tensors on its device (a bare
    SampleBatch would reach the loss as numpy in RLlib 2.60)."""
    batch = SampleBatch(arrays)
    return MultiAgentBatch({DEFAULT_MODULE_ID: batch}, env_steps=len(batch))


def learn_and_sync(algorithm, **update_kwargs) -> None:
    """One LearnerGroup update (`batch=...` or `episodes=...`, minibatching via update_kwargs), its
    metrics aggregated, then the new weights pushed to every EnvRunner: the end of each of our
    training steps."""
    steps = algorithm.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME), default=0)
    results = algorithm.learner_group.update(timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: steps}, **update_kwargs)
    algorithm.metrics.aggregate(results, key=LEARNER_RESULTS)
    group = algorithm.env_runner_group
    if group.num_remote_workers() or group.local_env_runner is None:
        group.sync_weights(from_worker_or_learner_group=algorithm.learner_group, inference_only=True)
    else:  # RLlib's sync_weights would ray.put the weights for remote runners that are not there
        state = algorithm.learner_group.get_state(components=f"{COMPONENT_LEARNER}/{COMPONENT_RL_MODULE}",
                                                  inference_only=True)[COMPONENT_LEARNER]
        group.local_env_runner.set_state({key: value for key, value in state.items()
                                          if key in (COMPONENT_RL_MODULE, WEIGHTS_SEQ_NO)})
