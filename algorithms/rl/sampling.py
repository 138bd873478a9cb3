"""Our side of RLlib's data flow: sample EnvRunners in parallel, turn episode fragments into plain
arrays, hand data to the Learners and push the new weights back."""

from __future__ import annotations

import numpy as np
import tree

from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, LEARNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

from algorithms.rl.replay import Fragment


def sample_fragments(algorithm, num_timesteps: int | None = None, num_episodes: int | None = None) -> list:
    """Sample on every EnvRunner at once (or the local one when there are none); aggregate their metrics.
    Returns RLlib's episode fragments, EnvRunner by EnvRunner, each runner's in the order it returned them."""
    group = algorithm.env_runner_group
    runners = max(1, group.num_remote_workers())
    kwargs = ({"num_timesteps": max(1, num_timesteps // runners)} if num_timesteps is not None
              else {"num_episodes": max(1, num_episodes // runners)})
    results = group.foreach_env_runner(lambda runner: _sample_on(runner, kwargs),
                                       local_env_runner=group.num_remote_workers() <= 0)
    algorithm.metrics.aggregate([r[1] for r in results], key=ENV_RUNNER_RESULTS)
    return [episode for episode in tree.flatten([r[0] for r in results]) if len(episode) > 0]


def _sample_on(runner, kwargs: dict) -> tuple[list, dict]:
    """One EnvRunner's sample and metrics, with its lifetime env-step count moved on by what it sampled.
    The module's exploration schedule reads that count (RLlib's `forward_exploration(t=...)`), and RLlib
    sets it only once per `train()`: without this, epsilon would stay where the iteration began for all of
    an iteration's training steps and decay over more env steps than `epsilon_timesteps`. Like RLlib's
    count, it is global (this runner's steps times the number of runners) until RLlib sets the exact one."""
    episodes = runner.sample(explore=True, **kwargs)
    runners = max(1, runner.config.num_env_runners)
    runner.num_env_steps_sampled_lifetime += sum(len(episode) for episode in episodes) * runners
    return episodes, runner.get_metrics()


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
    algorithm.env_runner_group.sync_weights(from_worker_or_learner_group=algorithm.learner_group,
                                            inference_only=True)
