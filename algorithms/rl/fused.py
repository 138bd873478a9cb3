"""One gradient step in plain torch calls, for our TorchLearners (DQN's and A2C's).

TorchLearner's generic update (`_uncompiled_update`: forward_train over the MultiRLModule, compute_losses,
compute_gradients, postprocess_gradients, apply_gradients) costs about 1.5 ms of bookkeeping per step on a
64-unit MLP, several times the arithmetic. `fused_step` takes the same step: the module's own training
forward, the learner's loss, backward, clipping by global norm with non-finite gradients zeroed (as RLlib's
`apply_gradients`), the optimiser's step. `tests/test_rl_algorithms.py` checks that both paths take the
same steps, for each learner.
"""

from __future__ import annotations

import torch


class FusedUpdate:
    """Mixin for a TorchLearner whose `step_loss(module_id, config, batch, fwd_out, with_stats)` returns the
    loss and (with_stats) the statistics to log."""

    def configure_optimizers_for_module(self, module_id, config=None) -> None:
        """RLlib's default, Adam with the lr scheduler, in torch's fused implementation: one kernel for all
        parameters instead of a loop over them (about a third of a small network's gradient step)."""
        params = self.get_parameters(self._module[module_id])
        self.register_optimizer(module_id=module_id, optimizer=torch.optim.Adam(params, fused=True), params=params,
                                lr_or_lr_schedule=config.lr)

    def fused_step(self, minibatch: dict, log_metrics: bool = True):
        """One gradient step on a one-module minibatch; returns what TorchLearner's `_update` returns.
        `log_metrics`: log the step's loss statistics (RLlib keeps the last value, window 1)."""
        (module_id, batch), = minibatch.items()
        module = self.module[module_id].unwrapped()
        fwd_out = module._forward_train(batch)  # the module's own training forward (no mode switch per step)
        loss, stats = self.step_loss(module_id, self.config.get_config_for_module(module_id), batch, fwd_out,
                                     with_stats=log_metrics)
        if log_metrics:
            self.metrics.log_dict(stats, key=module_id, window=1)
        optimizer, params = self._optimizer_and_params(module_id)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
            if not torch.isfinite(norm):  # as RLlib's apply_gradients: zero what is not finite
                for param in params:
                    if param.grad is not None:
                        param.grad.nan_to_num_(nan=0.0, posinf=0.0, neginf=0.0)
        optimizer.step()
        return {module_id: fwd_out}, {module_id: loss}, {}

    def _optimizer_and_params(self, module_id):
        (_, optimizer), = self.get_optimizers_for_module(module_id)
        return optimizer, [param for group in optimizer.param_groups for param in group["params"]]

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        """RLlib's path (and `tests/test_rl_algorithms.py`'s reference): the same loss, its statistics logged."""
        loss, stats = self.step_loss(module_id, config, batch, fwd_out, with_stats=True)
        self.metrics.log_dict(stats, key=module_id, window=1)
        return loss
