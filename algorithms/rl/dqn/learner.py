"""DQN / Double DQN TorchLearner: TD loss on replayed n-step transitions; the target network is
updated per gradient step, in `gradient_step`, the one place that counts them. Each step runs in plain
torch calls (`algorithms.rl.fused`) instead of RLlib's generic per-update machinery, which dominated the profile."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.core.rl_module.apis.target_network_api import TargetNetworkAPI

from algorithms.rl.fused import FusedUpdate
from algorithms.rl.live import LiveSettings
from algorithms.rl.modules import Q_VALUES
from algorithms.rl.targets import double_dqn_target, dqn_target

COUNTERS = "dqn_counters"


@torch.no_grad()
def polyak_update(main: torch.nn.Module, target: torch.nn.Module, tau: float) -> None:
    """target <- tau main + (1 - tau) target (a copy at tau 1), as RLlib's `update_target_network`, in one
    foreach kernel per kind of tensor instead of a state-dict round trip (which, after every gradient step,
    cost about as much as the step itself on a small MLP)."""
    blend, copy = [], []
    for pair in [*zip(target.parameters(), main.parameters()), *zip(target.buffers(), main.buffers())]:
        (blend if tau < 1.0 and pair[0].is_floating_point() else copy).append(pair)
    if blend:
        torch._foreach_lerp_([t for t, _ in blend], [m for _, m in blend], tau)
    if copy:
        torch._foreach_copy_([t for t, _ in copy], [m for _, m in copy])


class DQNLearner(FusedUpdate, LiveSettings, TorchLearner):
    def build(self) -> None:
        super().build()
        self.module.foreach_module(
            lambda _, module: module.make_target_networks() if isinstance(module, TargetNetworkAPI) else None)
        self.gradient_steps = 0
        self.steps_at_last_sync = 0

    def _update(self, batch: dict):
        """All `updates_per_rollout` gradient steps of a training step in one Learner update: the batch
        holds their minibatches back to back, already tensors. Slicing tensors here replaces RLlib's
        per-minibatch slicing of the MultiAgentBatch and its bookkeeping, about a tenth of our DQN's
        training time on CartPole. RLlib's own minibatching (`minibatch_size`) also ends up here,
        one minibatch per call."""
        size = self.config.train_batch_size_per_learner
        count = min(len(module_batch[Columns.ACTIONS]) for module_batch in batch.values())
        result, starts = None, range(0, max(count - size, 0) + 1, size)  # smaller than a minibatch: one step
        for start in starts:
            minibatch = {module_id: {key: value[start:start + size] for key, value in module_batch.items()}
                         for module_id, module_batch in batch.items()}
            result = self.gradient_step(minibatch, log_metrics=start == starts[-1])
        return result

    def gradient_step(self, minibatch: dict, log_metrics: bool = True):
        """One gradient step, then the target-network update it is due (see `sync_targets`)."""
        result = self.fused_step(minibatch, log_metrics)
        self.gradient_steps += 1
        self.sync_targets()
        return result

    def sync_targets(self) -> None:
        """Polyak averaging (target <- tau online + (1 - tau) target) after every gradient step when
        tau < 1, else a hard copy every `target_update_freq` steps."""
        tau = self.setting("tau")
        if tau < 1.0 or self.gradient_steps - self.steps_at_last_sync >= self.setting("target_update_freq"):
            for module in self.module._rl_modules.values():
                for main, target in module.unwrapped().get_target_network_pairs():
                    polyak_update(main, target, tau)
            self.steps_at_last_sync = self.gradient_steps
            self.metrics.log_value("target_updates", 1, reduce="sum")

    def step_loss(self, module_id, config, batch, fwd_out, with_stats: bool = True):
        """The TD loss of a minibatch and, `with_stats`, what it logs (Q and target means, mean |TD error|,
        the loss); a step that logs nothing skips those reductions."""
        module = self.module[module_id].unwrapped()
        q_selected = fwd_out[Q_VALUES].gather(1, batch[Columns.ACTIONS].long().unsqueeze(1)).squeeze(1)
        with torch.no_grad():
            next_batch = {Columns.OBS: batch["next_obs"]}
            q_next_target = module.forward_target(next_batch)[Q_VALUES]
            if config.double_q:
                target = double_dqn_target(batch["rewards"], batch["discounts"], batch["terminated"],
                                           module.q_net(batch["next_obs"]), q_next_target)
            else:
                target = dqn_target(batch["rewards"], batch["discounts"], batch["terminated"], q_next_target)
        loss_fn = F.smooth_l1_loss if config.td_loss == "huber" else F.mse_loss
        loss = loss_fn(q_selected, target)
        if not with_stats:
            return loss, {}
        return loss, {"q_mean": q_selected.mean(), "target_mean": target.mean(),
                      "td_error_mean": (q_selected - target).abs().mean(), "td_loss": loss}

    def get_state(self, components=None, *, not_components=None, **kwargs) -> dict:
        """RLlib's Learner state plus the gradient-step counters, so a restored learner keeps its
        target-sync schedule."""
        state = super().get_state(components, not_components=not_components, **kwargs)
        state[COUNTERS] = {"gradient_steps": self.gradient_steps, "steps_at_last_sync": self.steps_at_last_sync}
        return state

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        if COUNTERS in state:
            self.gradient_steps = state[COUNTERS]["gradient_steps"]
            self.steps_at_last_sync = state[COUNTERS]["steps_at_last_sync"]
