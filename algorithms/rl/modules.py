"""TorchRLModules: a Q-network (DQN / Double DQN, dueling option, target net, epsilon-greedy) and an
actor-critic (policy and value heads, shared or separate trunks). Image observations (C, H, W) get the
Nature-DQN CNN, vectors an MLP.
"""

from __future__ import annotations

import torch
from torch import nn

from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.utils import make_target_network
from ray.rllib.core.rl_module.apis.target_network_api import TargetNetworkAPI
from ray.rllib.core.rl_module.apis.value_function_api import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule

Q_VALUES = "q_values"


def linear_schedule(start: float, end: float, duration: int, t: int) -> float:
    """Linear interpolation from start to end over `duration` steps, then constant."""
    if duration <= 0:
        return end
    return start + (end - start) * min(1.0, max(0, t) / duration)


class NatureCNN(nn.Module):
    """Mnih et al. 2015: 32x8x8/4, 64x4x4/2, 64x3x3/1, then 512 units; uint8 frames scaled to [0, 1]."""

    def __init__(self, in_channels: int, height: int, width: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, 32, 8, stride=4), nn.ReLU(), nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            flat = self.conv(torch.zeros(1, in_channels, height, width)).shape[1]
        self.fc = nn.Sequential(nn.Linear(flat, 512), nn.ReLU())
        self.out_dim = 512

    def forward(self, obs):
        return self.fc(self.conv(obs.float() / 255.0))


class MLP(nn.Module):
    def __init__(self, in_dim: int, hidden: list[int]):
        super().__init__()
        layers, dim = [], in_dim
        for size in hidden:
            layers += [nn.Linear(dim, size), nn.ReLU()]
            dim = size
        self.net = nn.Sequential(*layers)
        self.out_dim = dim

    def forward(self, obs):
        return self.net(obs.float())


def build_trunk(observation_space, hidden: list[int]) -> nn.Module:
    shape = observation_space.shape
    if len(shape) == 3:
        return NatureCNN(*shape)
    return MLP(int(torch.tensor(shape).prod()), hidden)


class QNetwork(nn.Module):
    """Q(s, .) from a trunk; dueling splits it into V(s) + A(s, a) - mean_a A(s, a) (Wang et al. 2016)."""

    def __init__(self, trunk: nn.Module, num_actions: int, dueling: bool):
        super().__init__()
        self.trunk, self.dueling = trunk, dueling
        if dueling:
            self.value = nn.Linear(trunk.out_dim, 1)
            self.advantage = nn.Linear(trunk.out_dim, num_actions)
        else:
            self.q = nn.Linear(trunk.out_dim, num_actions)

    def forward(self, obs):
        features = self.trunk(obs)
        if self.dueling:
            advantage = self.advantage(features)
            return self.value(features) + advantage - advantage.mean(dim=1, keepdim=True)
        return self.q(features)


class QModule(TorchRLModule, TargetNetworkAPI):
    """model_config: hidden, dueling, epsilon_start, epsilon_end, epsilon_timesteps."""

    def setup(self):
        cfg = self.model_config
        self.q_net = QNetwork(build_trunk(self.observation_space, cfg["hidden"]), self.action_space.n,
                              cfg["dueling"])

    def epsilon(self, t: int) -> float:
        cfg = self.model_config
        return linear_schedule(cfg["epsilon_start"], cfg["epsilon_end"], cfg["epsilon_timesteps"], t)

    def _forward_inference(self, batch, **kwargs):
        return {Columns.ACTIONS: self.q_net(batch[Columns.OBS]).argmax(dim=1)}

    def _forward_exploration(self, batch, t: int = 0, **kwargs):
        greedy = self.q_net(batch[Columns.OBS]).argmax(dim=1)
        explore = torch.rand(len(greedy), device=greedy.device) < self.epsilon(t)
        random = torch.randint(0, self.action_space.n, greedy.shape, device=greedy.device)
        return {Columns.ACTIONS: torch.where(explore, random, greedy)}

    def _forward_train(self, batch, **kwargs):
        return {Q_VALUES: self.q_net(batch[Columns.OBS])}

    # TargetNetworkAPI: the Learner syncs these pairs
    def make_target_networks(self) -> None:
        self.target_q_net = make_target_network(self.q_net)

    def get_target_network_pairs(self):
        return [(self.q_net, self.target_q_net)]

    def forward_target(self, batch, **kwargs):
        return {Q_VALUES: self.target_q_net(batch[Columns.OBS])}

    def get_non_inference_attributes(self) -> list[str]:
        return ["target_q_net"]


class ActorCriticModule(TorchRLModule, ValueFunctionAPI):
    """Categorical policy and a state-value head; model_config: hidden, shared_trunk."""

    def setup(self):
        cfg = self.model_config
        self.policy_trunk = build_trunk(self.observation_space, cfg["hidden"])
        self.policy_head = nn.Linear(self.policy_trunk.out_dim, self.action_space.n)
        if not self.inference_only:
            self.value_trunk = self.policy_trunk if cfg["shared_trunk"] else build_trunk(
                self.observation_space, cfg["hidden"])
            self.value_head = nn.Linear(self.value_trunk.out_dim, 1)

    def _forward(self, batch, **kwargs):
        return {Columns.ACTION_DIST_INPUTS: self.policy_head(self.policy_trunk(batch[Columns.OBS]))}

    def compute_values(self, batch, embeddings=None):
        return self.value_head(self.value_trunk(batch[Columns.OBS])).squeeze(-1)

    def get_non_inference_attributes(self) -> list[str]:
        return ["value_trunk", "value_head"]
