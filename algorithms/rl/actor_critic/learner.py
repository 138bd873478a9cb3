"""Advantage actor-critic TorchLearner: policy gradient with a learned baseline and entropy bonus."""

from __future__ import annotations

import torch

from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner

from algorithms.rl.targets import gae


class A2CLearner(TorchLearner):
    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        module = self.module[module_id].unwrapped()
        dist = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
        values = module.compute_values(batch)
        with torch.no_grad():
            next_values = module.compute_values({Columns.OBS: batch["next_obs"]})
            advantages = gae(batch["rewards"], values.detach(), next_values, batch["terminated"],
                             batch["segment_end"], config.gamma, config.lambda_)
            returns = advantages + values.detach()
            if config.normalize_advantages and len(advantages) > 1:
                advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy_loss = -(dist.logp(batch[Columns.ACTIONS]) * advantages).mean()
        value_loss = 0.5 * (returns - values).pow(2).mean()
        entropy = dist.entropy().mean()
        self.metrics.log_dict({"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy,
                               "value_mean": values.mean(), "advantage_mean": advantages.mean()},
                              key=module_id, window=1)
        return policy_loss + config.vf_loss_coeff * value_loss - config.entropy_coeff * entropy
