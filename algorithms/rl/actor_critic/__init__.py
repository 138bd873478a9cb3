"""Synchronous advantage actor-critic (A2C, Mnih et al. 2016) on RLlib's new API stack.

Every iteration samples `rollout_fragment_length` steps from each of the N x M vectorised envs
(N EnvRunners x M envs each) with the current weights, takes one gradient step, and syncs weights.
Advantages are GAE(lambda) (Schulman et al. 2016), computed in a learner connector from whole fragments
(`A2CTrainBatch`); lambda_=1 gives n-step returns over the fragment.
REINFORCE with baseline is `.training(complete_episodes=True, lambda_=1.0)`: whole episodes, no bootstrap.
Its batch is one whole episode from every env per round, `episodes_per_batch / envs` rounds, all run to
their end with the current weights (`sampling.sample_first_episodes`), so long episodes count as often
as they occur.
"""

from __future__ import annotations

from typing_extensions import Self

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from algorithms.rl import episodes_per_batch_problem
from algorithms.rl.base import SampledAlgorithm, SampledConfig, validate_common
from algorithms.rl.sampling import learn_and_sync


def total_envs(config) -> int:
    """Vectorised envs over all EnvRunners (the local one samples when there are no remote ones)."""
    return max(1, config.num_env_runners) * config.num_envs_per_env_runner


class A2CConfig(SampledConfig):
    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or A2C)
        self.rollout_fragment_length = 8
        self.lambda_ = 0.95
        self.vf_loss_coeff = 0.5
        self.entropy_coeff = 0.01
        self.normalize_advantages = False
        self.complete_episodes = False
        self.episodes_per_batch = 8
        self.shared_trunk = False
        self.hidden = [64, 64]
        self.lr = 1e-3
        self.gamma = 0.99
        self.grad_clip = 0.5
        self.metrics_num_episodes_for_smoothing = 20
        self.add_default_connectors_to_learner_pipeline = False  # A2CTrainBatch builds the whole batch

    def training(self, *, lambda_=NotProvided, vf_loss_coeff=NotProvided, entropy_coeff=NotProvided,
                 normalize_advantages=NotProvided, complete_episodes=NotProvided, episodes_per_batch=NotProvided,
                 shared_trunk=NotProvided, hidden=NotProvided, **kwargs) -> Self:
        super().training(**kwargs)
        for name, value in dict(lambda_=lambda_, vf_loss_coeff=vf_loss_coeff, entropy_coeff=entropy_coeff,
                                normalize_advantages=normalize_advantages, complete_episodes=complete_episodes,
                                episodes_per_batch=episodes_per_batch, shared_trunk=shared_trunk,
                                hidden=hidden).items():
            if value is not NotProvided:
                setattr(self, name, value)
        return self

    def validate(self) -> None:
        super().validate()
        validate_common(self)
        if not 0 <= self.lambda_ <= 1:
            raise ValueError("lambda_ must be in [0, 1]")
        if self.entropy_coeff < 0 or self.vf_loss_coeff < 0:
            raise ValueError("entropy_coeff and vf_loss_coeff must be >= 0")
        problem = episodes_per_batch_problem(self.episodes_per_batch, self.num_env_runners,
                                             self.num_envs_per_env_runner)
        if self.complete_episodes and problem:
            raise ValueError(problem)

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from algorithms.rl.modules import ActorCriticModule

        return RLModuleSpec(module_class=ActorCriticModule,
                            model_config={"hidden": self.hidden, "shared_trunk": self.shared_trunk})

    def get_default_learner_class(self):
        from algorithms.rl.actor_critic.learner import A2CLearner

        return A2CLearner


class A2C(SampledAlgorithm):
    @classmethod
    def get_default_config(cls) -> A2CConfig:
        return A2CConfig()

    def training_step(self) -> None:
        config = self.config
        envs = total_envs(config)
        if config.complete_episodes:
            episodes, _ = self.sample_whole_episodes(rounds=config.episodes_per_batch // envs)
        else:
            episodes, _ = self.sample(num_timesteps=config.rollout_fragment_length * envs)
        learn_and_sync(self, episodes=episodes)
