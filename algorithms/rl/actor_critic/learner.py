"""Advantage actor-critic TorchLearner: policy gradient with a learned baseline and entropy bonus,
on advantages and value targets that `A2CTrainBatch` computed before any minibatching. Each update is one
gradient step in plain torch calls (`algorithms.rl.fused`), as DQN's."""

from __future__ import annotations

from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.evaluation.postprocessing import Postprocessing

from algorithms.rl.actor_critic.connector import A2CTrainBatch
from algorithms.rl.fused import FusedUpdate
from algorithms.rl.live import LiveSettings


class A2CLearner(FusedUpdate, LiveSettings, TorchLearner):
    def build(self) -> None:
        super().build()
        config = self.config
        self._learner_connector.append(A2CTrainBatch(gamma=config.gamma, lambda_=config.lambda_,
                                                     normalize_advantages=config.normalize_advantages,
                                                     clip_rewards=config.clip_rewards))

    def _update(self, batch: dict):
        """RLlib hands each minibatch here (one per update at A2C's settings): one fused gradient step."""
        return self.fused_step(dict(batch.items()))

    def step_loss(self, module_id, config, batch, fwd_out, with_stats: bool = True):
        module = self.module[module_id].unwrapped()
        dist = module.get_train_action_dist_cls().from_logits(fwd_out[Columns.ACTION_DIST_INPUTS])
        values = module.compute_values(batch)
        advantages, returns = batch[Postprocessing.ADVANTAGES], batch[Postprocessing.VALUE_TARGETS]
        policy_loss = -(dist.logp(batch[Columns.ACTIONS]) * advantages).mean()
        value_loss = 0.5 * (returns - values).pow(2).mean()
        entropy = dist.entropy().mean()
        loss = policy_loss + config.vf_loss_coeff * value_loss - self.setting("entropy_coeff") * entropy
        if not with_stats:
            return loss, {}
        return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy,
                      "value_mean": values.mean(), "advantage_mean": advantages.mean()}
