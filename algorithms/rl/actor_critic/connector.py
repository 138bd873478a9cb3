"""The A2C train batch, built where RLlib builds PPO's: in a learner connector, from whole episode
fragments, before the Learner splits anything into minibatches.

Each fragment's values V(s_0..s_L) come from one forward pass of the value head; GAE runs over the
fragment (bootstrapping from V(s_L) unless the episode terminated there), and the batch carries
`advantages` and `value_targets` next to `obs` and `actions`. The loss only reads those columns, so
it is the same whatever RLlib's minibatching or shuffling does to the rows afterwards.
"""

from __future__ import annotations

import numpy as np
import torch

from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.evaluation.postprocessing import Postprocessing

from algorithms.rl.sampling import to_fragment
from algorithms.rl.targets import clip_rewards, gae


class A2CTrainBatch(ConnectorV2):
    def __init__(self, input_observation_space=None, input_action_space=None, *, gamma: float, lambda_: float,
                 normalize_advantages: bool, clip_rewards=None):
        super().__init__(input_observation_space, input_action_space)
        self.gamma, self.lambda_ = gamma, lambda_
        self.normalize_advantages, self.clip_rewards = normalize_advantages, clip_rewards

    def __call__(self, *, rl_module, batch, episodes, **kwargs):
        module = rl_module[DEFAULT_MODULE_ID].unwrapped()
        device = next(module.parameters()).device
        fragments = [to_fragment(e) for e in episodes]
        observations = np.concatenate([f.observations for f in fragments])  # L + 1 per fragment
        with torch.no_grad():
            values = module.compute_values({Columns.OBS: torch.as_tensor(observations, device=device)})
        values = values.cpu().numpy().astype(np.float32)
        rows, advantages, value_targets, start = [], [], [], 0
        for f in fragments:
            length = len(f.actions)
            fragment_values = values[start:start + length + 1]
            last = 0.0 if f.terminated else fragment_values[-1]
            rewards = clip_rewards(f.rewards, self.clip_rewards)
            fragment_advantages = gae(rewards, fragment_values[:-1], last, self.gamma, self.lambda_)
            rows.append(np.arange(start, start + length))
            advantages.append(fragment_advantages)
            value_targets.append(fragment_advantages + fragment_values[:-1])
            start += length + 1
        advantages = np.concatenate(advantages)
        if self.normalize_advantages and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        columns = {Columns.OBS: observations[np.concatenate(rows)],
                   Columns.ACTIONS: np.concatenate([f.actions for f in fragments]),
                   Postprocessing.ADVANTAGES: advantages, Postprocessing.VALUE_TARGETS: np.concatenate(value_targets)}
        batch[DEFAULT_MODULE_ID] = {key: torch.as_tensor(value, device=device) for key, value in columns.items()}
        return batch
