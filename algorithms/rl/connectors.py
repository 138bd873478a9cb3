"""A lean connector pipeline for our EnvRunners: the common case of RLlib's default pipelines in one piece each.

RLlib's defaults (env-to-module: observations from episodes, a time rank, RNN states, agent-to-module
mapping, batching, numpy to tensor; module-to-env: actions from the distribution, tensor to numpy,
unbatching, time rank, clipping, listifying) handle multi-agent, recurrent and nested-space modules, item by
item for every env at every vector step; they were about a quarter of our DQN's time on CartPole (issue 17's
profile). Our modules are single-agent and non-recurrent, with Box observations and Discrete actions, and
for them one piece each way does the same:

- `StackObservations` (env-to-module): the vector env's latest observations as one tensor on the module's
  device. The EnvRunner hands them to the pipeline as they went into the episodes, so the batch is what
  RLlib's pieces would build from the episodes' last observations.
- `ActionsToEnv` (module-to-env): actions sampled from the module's distribution inputs when it gave none
  (the mode when not exploring; with their log-probabilities, as RLlib's GetActions), then every column as
  numpy arrays indexed by env, which the EnvRunner sends to the vector env and stores in the episodes.

Both stay RLlib connectors in RLlib's pipelines (`add_default_connectors_to_*_pipeline=False` plus these),
so EnvRunners, episodes, their metrics and checkpoints work as before.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchCategorical
from ray.rllib.env import INPUT_ENV_SINGLE_SPACES


class StackObservations(ConnectorV2):
    def __init__(self, input_observation_space=None, input_action_space=None, *, device=None, **kwargs):
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self.device = device

    def __call__(self, *, rl_module, batch, episodes, explore=None, shared_data=None, metrics=None, **kwargs):
        observations = kwargs.get(Columns.OBS)
        if observations is None:  # a caller that passes no env data: the episodes' latest observations
            observations = [episode.get_observations(-1) for episode in episodes]
        stacked = torch.from_numpy(np.stack(observations))
        batch[Columns.OBS] = stacked if self.device is None else stacked.to(self.device)
        return batch


class ActionsToEnv(ConnectorV2):
    def __call__(self, *, rl_module, batch, episodes, explore=None, shared_data=None, metrics=None, **kwargs):
        if Columns.ACTIONS not in batch:
            dist_class = (rl_module.get_exploration_action_dist_cls() if explore
                          else rl_module.get_inference_action_dist_cls())
            if dist_class is TorchCategorical:
                batch[Columns.ACTIONS], logp = categorical_actions(batch[Columns.ACTION_DIST_INPUTS], explore)
            else:
                dist = dist_class.from_logits(batch[Columns.ACTION_DIST_INPUTS])
                if not explore:
                    dist = dist.to_deterministic()
                batch[Columns.ACTIONS] = dist.sample()
                logp = dist.logp(batch[Columns.ACTIONS])
            batch.setdefault(Columns.ACTION_LOGP, logp)
        return {key: value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
                for key, value in batch.items()}


def categorical_actions(logits: torch.Tensor, explore: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """What RLlib's TorchCategorical samples (the same `torch.multinomial` draw on the same probabilities, so
    the same actions from the same seed) and their log-probabilities, without building the distribution
    objects: under a third of their cost per vector step. Not exploring: the mode, log-probability 0 (as
    `to_deterministic()`)."""
    if not explore:
        actions = logits.argmax(dim=-1)
        return actions, torch.zeros_like(actions, dtype=logits.dtype)
    log_probs = torch.log_softmax(logits, dim=-1)
    actions = torch.multinomial(log_probs.exp(), 1, True)
    return actions.squeeze(-1), log_probs.gather(-1, actions).squeeze(-1)


def _single_spaces(env, spaces) -> tuple[gym.Space, gym.Space]:
    if env is not None:
        return (getattr(env, "single_observation_space", env.observation_space),
                getattr(env, "single_action_space", env.action_space))
    return spaces[INPUT_ENV_SINGLE_SPACES]


def _check_common_case(env, spaces) -> None:
    observation_space, action_space = _single_spaces(env, spaces)
    if not isinstance(observation_space, gym.spaces.Box) or not isinstance(action_space, gym.spaces.Discrete):
        raise ValueError(f"our RL algorithms take Box observations and Discrete actions; this env has "
                         f"{observation_space} and {action_space}")


def env_to_module(env=None, spaces=None, device=None) -> list[ConnectorV2]:
    """`config.env_runners(env_to_module_connector=...)` of our algorithms."""
    _check_common_case(env, spaces)
    return [StackObservations(device=device)]


def module_to_env(env=None, spaces=None) -> list[ConnectorV2]:
    """`config.env_runners(module_to_env_connector=...)` of our algorithms."""
    _check_common_case(env, spaces)
    return [ActionsToEnv()]
