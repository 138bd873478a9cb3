"""DQN (Mnih et al. 2015) and Double DQN (van Hasselt et al. 2016) on RLlib's new API stack.

`DQNConfig().training(double_q=True)` is Double DQN: the same algorithm, one flag.
"""

from __future__ import annotations

from typing_extensions import Self

from ray.rllib.algorithms import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig, NotProvided
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from algorithms.rl.replay import ReplayBuffer
from algorithms.rl.sampling import fragment_arrays, learn_and_sync, sample_fragments
from algorithms.rl.targets import n_step_transitions


class DQNConfig(AlgorithmConfig):
    def __init__(self, algo_class=None):
        super().__init__(algo_class=algo_class or DQN)
        self.double_q = False
        self.dueling = False
        self.n_step = 1
        self.td_loss = "huber"
        self.replay_capacity = 50_000
        self.learning_starts = 1_000
        self.rollout_steps = 32
        self.updates_per_rollout = 8
        self.target_update_freq = 500
        self.tau = 1.0
        self.epsilon_start, self.epsilon_end, self.epsilon_timesteps = 1.0, 0.02, 10_000
        self.hidden = [64, 64]
        self.lr = 5e-4
        self.gamma = 0.99
        self.grad_clip = 10.0
        self.train_batch_size_per_learner = 64

    def training(self, *, double_q=NotProvided, dueling=NotProvided, n_step=NotProvided, td_loss=NotProvided,
                 replay_capacity=NotProvided, learning_starts=NotProvided, rollout_steps=NotProvided,
                 updates_per_rollout=NotProvided, target_update_freq=NotProvided, tau=NotProvided,
                 epsilon=NotProvided, hidden=NotProvided, **kwargs) -> Self:
        """DQN settings; `epsilon` is (start, end, timesteps) of the linear exploration schedule."""
        super().training(**kwargs)
        for name, value in dict(double_q=double_q, dueling=dueling, n_step=n_step, td_loss=td_loss,
                                replay_capacity=replay_capacity, learning_starts=learning_starts,
                                rollout_steps=rollout_steps, updates_per_rollout=updates_per_rollout,
                                target_update_freq=target_update_freq, tau=tau, hidden=hidden).items():
            if value is not NotProvided:
                setattr(self, name, value)
        if epsilon is not NotProvided:
            self.epsilon_start, self.epsilon_end, self.epsilon_timesteps = epsilon
        return self

    def validate(self) -> None:
        super().validate()
        checks = [(self.n_step >= 1, "n_step must be >= 1"), (0 < self.tau <= 1, "tau must be in (0, 1]"),
                  (self.td_loss in ("huber", "mse"), "td_loss must be huber or mse"),
                  (self.target_update_freq >= 1, "target_update_freq must be >= 1"),
                  (self.replay_capacity >= self.train_batch_size_per_learner,
                   "replay_capacity must hold at least one train batch")]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from algorithms.rl.modules import QModule

        return RLModuleSpec(module_class=QModule, model_config={
            "hidden": self.hidden, "dueling": self.dueling, "epsilon_start": self.epsilon_start,
            "epsilon_end": self.epsilon_end, "epsilon_timesteps": self.epsilon_timesteps})

    def get_default_learner_class(self):
        from algorithms.rl.dqn.learner import DQNLearner

        return DQNLearner


class DQN(Algorithm):
    @classmethod
    def get_default_config(cls) -> DQNConfig:
        return DQNConfig()

    def setup(self, config) -> None:
        super().setup(config)
        self.replay = ReplayBuffer(self.config.replay_capacity, seed=self.config.seed or 0)

    def training_step(self) -> None:
        """Sample a rollout, store its n-step transitions, then `updates_per_rollout` gradient steps
        on uniform replay batches in one Learner call (`DQNLearner._update` takes them one minibatch
        after the other), and push the new weights to the EnvRunners."""
        config = self.config
        for episode in sample_fragments(self, num_timesteps=config.rollout_steps):
            obs, actions, rewards = fragment_arrays(episode)
            self.replay.add(n_step_transitions(obs, actions, rewards, episode.is_terminated, config.n_step,
                                               config.gamma))
        if len(self.replay) < config.learning_starts:
            return
        batch_size = config.train_batch_size_per_learner
        batch = self.replay.sample(batch_size * config.updates_per_rollout)
        learn_and_sync(self, batch)
